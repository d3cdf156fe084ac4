"""An agent: one prompt, one output model, one repair attempt, every call accounted."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from adapters.errors import InvalidOutput
from adapters.logs import get_logger
from adapters.rate_limiter import Limit
from agents import spans
from agents.gateway import CallResult, provider_of
from agents.pricing import price_for
from agents.prompts import Prompt
from agents.runtime import AgentRuntime
from agents.tokens import count_messages_async, tokens_at_most
from agents.usage import CallContext, Served, Usage, UsageRecord, usd_to_nano

Out = TypeVar("Out", bound=BaseModel)
log = get_logger("agents")

REPAIR_INSTRUCTION = (
    "Your previous answer did not pass validation:\n{errors}\n"
    "Return the corrected JSON object only, following the schema exactly."
)


class OutputProblems(Exception):
    """Raised by `Agent.check` to send named problems back to the model."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class AgentRun(Generic[Out]):
    """The validated output of one agent run and what it cost."""

    output: Out
    prompt: Prompt
    records: list[UsageRecord] = field(default_factory=list)

    @property
    def cost_nano(self) -> int:
        return sum(r.cost_nano for r in self.records)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for r in self.records:
            total = total + r.usage
        return total

    @property
    def served(self) -> Served:
        if self.records and all(r.served is Served.GATEWAY_CACHE for r in self.records):
            return Served.GATEWAY_CACHE
        return Served.FRESH

    @property
    def model_served(self) -> str | None:
        """The model that wrote the output (the prompt's fallback when its primary could not)."""
        return self.records[-1].model if self.records else None

    @property
    def fallback_from(self) -> str | None:
        """The prompt's primary model when its fallback wrote the output."""
        return self.records[-1].fallback_from if self.records else None


class Agent(Generic[Out]):
    """Subclasses set `name` (the prompt folder) and may override `postprocess` / `check`."""

    name: ClassVar[str]

    def __init__(self, runtime: AgentRuntime) -> None:
        self.runtime = runtime

    def postprocess(self, output: Out, variables: dict[str, Any]) -> Out:
        """Deterministic clean-up applied to every valid output (e.g. sanitizing)."""
        return output

    def check(self, output: Out, variables: dict[str, Any]) -> None:
        """Raise `OutputProblems` for semantic problems the schema can't express."""

    async def prompt_for(self, ctx: CallContext, version: str | None = None) -> Prompt:
        chosen = version or await self.runtime.resolve_version(self.name, ctx)
        return self.runtime.prompts.get(self.name, chosen)

    async def run(
        self,
        ctx: CallContext,
        variables: dict[str, Any],
        *,
        version: str | None = None,
        extra_messages: list[dict[str, str]] | None = None,
    ) -> AgentRun[Out]:
        """Render, call, validate; on invalid output ask once more with the errors, then fail."""
        with spans.agent_span(self.name, ctx) as span:
            run = await self._run(ctx, variables, version, extra_messages)
            spans.end_agent(span, run.cost_nano, run.served.value)
            return run

    async def _run(
        self,
        ctx: CallContext,
        variables: dict[str, Any],
        version: str | None,
        extra_messages: list[dict[str, str]] | None,
    ) -> AgentRun[Out]:
        ctx = ctx.for_agent(self.name)
        prompt = await self.prompt_for(ctx, version)
        spans.note_prompt(prompt)
        messages = prompt.render(variables) + list(extra_messages or [])
        run: AgentRun[Out] = AgentRun(output=None, prompt=prompt)  # type: ignore[arg-type]
        for attempt in range(2):
            result, reservation = await self._call(ctx, prompt, messages, run, repair=attempt > 0)
            # A slow call's answer is finished in turn (agents/finish_turns.py).
            async with self.runtime.finish.turn(result.latency_ms):
                output, problems = self._checked(prompt, result.text, variables)
                outcome = "invalid" if problems else "repaired" if attempt else None
                if outcome is not None:
                    run.records[-1] = _with_outcome(run.records[-1], outcome)
                await self.runtime.sink.settle(reservation, run.records[-1])
            if output is None:
                if attempt == 1:
                    raise InvalidOutput(
                        f"{prompt.ref} returned invalid output after one repair: {'; '.join(problems)}"
                    ) from None
                log.warning("output_invalid", agent=self.name, prompt=prompt.ref, problems=problems[:5])
                messages = [
                    *messages,
                    {"role": "assistant", "content": result.text},
                    {"role": "user", "content": REPAIR_INSTRUCTION.format(errors="\n".join(problems))},
                ]
                continue
            run.output = output
            return run
        raise AssertionError("unreachable")

    async def _call(
        self,
        ctx: CallContext,
        prompt: Prompt,
        messages: list[dict[str, str]],
        run: AgentRun[Out],
        *,
        repair: bool,
    ) -> tuple[CallResult, Any]:
        meta = prompt.meta
        price = price_for(meta.model, self.runtime.gateway.config.price_overrides)
        counted: list[int] = []

        def worst(tokens: int) -> int:
            return usd_to_nano(price.worst_case(tokens, meta.max_tokens))

        async def exact_worst() -> int:
            counted.append(await count_messages_async(messages, meta.model))
            return worst(counted[-1])

        key = call_key(prompt, messages)
        # The budget hold starts from a bound of the prompt's tokens; they are counted (tiktoken)
        # only if that bound does not fit, or where a rate budget paces the model (the gateway).
        bound = worst(tokens_at_most(messages, meta.model))
        reservation = await self.runtime.sink.reserve(ctx, meta.model, bound, exact_worst)
        try:
            with spans.model_span(meta.model, provider_of(meta.model), ctx, prompt) as span:
                result = await self.runtime.gateway.complete(
                    model=meta.model,
                    messages=messages,
                    ctx=ctx,
                    prompt_ref=prompt.ref,
                    response_model=prompt.output_model,
                    temperature=meta.temperature,
                    max_tokens=meta.max_tokens,
                    cache_ttl=None if repair else meta.gateway_cache_ttl,
                    cache_key=key,
                    skip_cache=ctx.force_fresh or repair,
                    prompt_tokens=counted[-1] if counted else None,
                    limit=Limit(meta.rpm, meta.tpm),
                    fallback_model=meta.fallback_model,
                )
                spans.end_model_call(span, result)
        except BaseException:
            await self.runtime.sink.release(reservation)
            raise
        run.records.append(
            UsageRecord(
                time=time.time(),
                store=ctx.store,
                pipeline=ctx.pipeline,
                agent=self.name,
                prompt=prompt.agent,
                prompt_version=prompt.version,
                model=result.model,
                provider=result.provider,
                usage=result.usage,
                cost_nano=result.cost_nano,
                served=result.served,
                gateway_log_id=result.log_id,
                latency_ms=result.latency_ms,
                job_id=ctx.job_id,
                # Deterministic, so a redelivered job's calls are recognized (see the ledger).
                call_id=key,
                gateway_step=result.step,
                fallback_from=result.fallback_from,
            )
        )
        return result, reservation

    def _checked(self, prompt: Prompt, text: str, variables: dict[str, Any]) -> tuple[Out | None, list[str]]:
        """The answer parsed, post-processed and checked; or None and the problems found."""
        try:
            output = self.postprocess(self._parse(prompt, text), variables)
            self.check(output, variables)
        except (ValidationError, OutputProblems, ValueError) as exc:
            return None, _problems(exc)
        return output, []

    def _parse(self, prompt: Prompt, text: str) -> Out:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the answer is not valid JSON ({exc.msg} at position {exc.pos})") from None
        return prompt.output_model.model_validate(data)  # type: ignore[return-value]


def call_key(prompt: Prompt, messages: list[dict[str, str]]) -> str:
    """A deterministic key for one call: the gateway cache key, and the call's id in the ledger."""
    meta = prompt.meta
    canonical = json.dumps(
        [prompt.ref, meta.model, meta.temperature, meta.max_tokens, messages],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return f"{prompt.ref}:{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


def _problems(exc: BaseException) -> list[str]:
    if isinstance(exc, ValidationError):
        out = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(root)"
            out.append(f"field '{loc}': {err['msg']}")
        return out
    if isinstance(exc, OutputProblems):
        return exc.problems
    return [str(exc)]


def _with_outcome(record: UsageRecord, outcome: str) -> UsageRecord:
    return replace(record, outcome=outcome)
