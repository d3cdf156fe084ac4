"""Run every case on every version through the gateway, cases in parallel.

Calls skip the gateway cache (`force_fresh`), so an eval measures the model, not a replay.
Usage is collected per case here, not charged to the stores' budgets.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters import retry
from adapters.errors import InvalidInput, InvalidOutput, RetryableError, WandstoreError
from agents.evals.assertions import check_all
from agents.evals.cases import Case
from agents.gateway import GatewayClient
from agents.inputs import agent_class, variables_for
from agents.prompts import PromptRegistry
from agents.runtime import AgentRuntime, ExactWorstCase
from agents.usage import CallContext, Served, Usage, UsageRecord

PIPELINE = "prompt_eval"
MAX_ATTEMPTS = 4
RETRY_BASE_S, RETRY_CAP_S = 0.5, 60.0  # 0.5 s, 1 s, 2 s between tries; a Retry-After up to a minute


@dataclass
class CaseOutcome:
    """One case run on one version: the output (None when it failed), its calls and verdicts."""

    case: Case
    version: str
    output: dict[str, Any] | None
    error: str | None
    input_text: str
    invalid: bool = False
    records: list[UsageRecord] = field(default_factory=list)
    results: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        return any(r.outcome == "repaired" for r in self.records)

    @property
    def usage(self) -> Usage:
        return sum((r.usage for r in self.records), Usage())

    @property
    def cost_nano(self) -> int:
        return sum(r.cost_nano for r in self.records)

    @property
    def cost_usd(self) -> float:
        return self.cost_nano / 1e9

    @property
    def latency_ms(self) -> float:
        return sum(r.latency_ms for r in self.records)

    @property
    def cache_hits(self) -> int:
        """Calls the gateway replayed, or whose prompt the provider had cached."""
        return sum(
            1 for r in self.records if r.served is Served.GATEWAY_CACHE or r.usage.cached_prompt_tokens > 0
        )

    @property
    def passed(self) -> bool:
        return all(reason is None for _, reason in self.results)


class _CollectingSink:
    """Keeps each case's usage records apart (one job id per case and version); no budgets."""

    def __init__(self) -> None:
        self.records: dict[str, list[UsageRecord]] = defaultdict(list)

    async def reserve(
        self, ctx: CallContext, model: str, worst_case_nano: int, exact: ExactWorstCase | None = None
    ) -> Any:
        return ctx.job_id

    async def release(self, reservation: Any) -> None:
        return None

    async def settle(self, reservation: Any, record: UsageRecord) -> None:
        self.records[str(reservation)].append(record)


async def run_eval(
    gateway: GatewayClient,
    prompts: PromptRegistry,
    agent_name: str,
    versions: list[str],
    cases: list[Case],
    *,
    concurrency: int = 8,
    on_done: Callable[[CaseOutcome], None] | None = None,
    close_gateway: bool = False,
) -> list[CaseOutcome]:
    """Every case on every version; outcomes in (version, case) order.

    `close_gateway` closes the client's HTTP sessions at the end (a CLI's one-off event loop).
    """
    for version in versions:
        prompts.get(agent_name, version)  # unknown versions fail before any call
    sink = _CollectingSink()
    agent = agent_class(agent_name)(AgentRuntime(gateway=gateway, prompts=prompts, sink=sink))
    run_id = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(concurrency)

    async def one(version: str, case: Case, job_id: str) -> CaseOutcome:
        async with gate:
            outcome = await _run_case(agent, prompts, version, case, job_id)
        outcome.records = sink.records.pop(job_id, [])
        outcome.results = check_all(case.assertions, outcome)
        if on_done is not None:
            on_done(outcome)
        return outcome

    # Interleaved, so every version meets the same warm-up and the same gateway load.
    jobs = {
        (version, n): one(version, case, f"eval-{run_id}-{version}-{n}")
        for n, case in enumerate(cases)
        for version in versions
    }
    try:
        done = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))
    finally:
        if close_gateway:
            await gateway.aclose()
    return [done[(version, n)] for version in versions for n in range(len(cases))]


async def _run_case(
    agent: Any, prompts: PromptRegistry, version: str, case: Case, job_id: str
) -> CaseOutcome:
    prompt = prompts.get(agent.name, version)
    extra = {"shopper_id": case.shopper_id} if case.shopper_id else {}
    ctx = CallContext(store=case.store, pipeline=PIPELINE, job_id=job_id, force_fresh=True, extra=extra)
    try:
        variables = variables_for(agent, case.input, prompt, case.options)
    except InvalidInput as exc:
        return CaseOutcome(case, version, None, f"bad case input: {exc}", "")
    input_text = json.dumps(variables, ensure_ascii=False, default=str)
    try:
        run = await retry.acall(
            lambda: agent.run(ctx, variables, version=version),
            on=RetryableError,
            base_s=RETRY_BASE_S,
            cap_s=RETRY_CAP_S,
            attempts=MAX_ATTEMPTS,
        )
    except InvalidOutput as exc:
        return CaseOutcome(case, version, None, str(exc), input_text, invalid=True)
    except WandstoreError as exc:  # a RetryableError still failing after MAX_ATTEMPTS lands here too
        return CaseOutcome(case, version, None, str(exc), input_text)
    return CaseOutcome(case, version, run.output.model_dump(mode="json"), None, input_text)
