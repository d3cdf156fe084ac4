"""The one gateway client: litellm pointed at Cloudflare AI Gateway (or the dev gateway).

Callers get a typed `CallResult` and the project's own errors; litellm and provider
exceptions never leave this module.

Before each call the model's rate budget (`adapters.rate_limiter`, MODEL_LIMITS or the
prompt's front matter) books a slot and the call waits for it, within its deadline; a 429 pushes
every process's next slot back by its `retry-after`, and the provider's `x-ratelimit-remaining-*`
headers correct the budget. A prompt's `fallback_model` serves when the primary is down (5xx,
connection errors) or rate-limited past what the call can wait; `CallResult.fallback_from` says so.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from pydantic import BaseModel

from adapters.errors import PermanentGatewayError, RateLimited, TransientGatewayError
from adapters.logs import get_logger, scrub
from adapters.rate_limiter import Limit, ModelLimiter, NoSlot, parse_rate_headers
from adapters.retry import acall, retry_after_s
from agents import gateway_headers
from agents._litellm import litellm
from agents.pricing import price_for
from agents.tokens import count_messages_async
from agents.usage import CallContext, Served, Usage

log = get_logger("agents.gateway")
PROVIDERS = ("openai", "anthropic")
# Leave this much of a call's deadline for the call itself when waiting for a slot.
DEADLINE_MARGIN_S = 0.2
# A paced call answered 429 is tried this many times in all (each after its retry-after).
RATE_LIMITED_TRIES = 3
# litellm hands a provider's response headers back prefixed (ModelResponse.set_provider_response_headers).
CACHE_STATUS = "llm_provider-cf-aig-cache-status"
LOG_ID = "llm_provider-cf-aig-log-id"


class ProviderDown(TransientGatewayError):
    """5xx or no connection: the provider (or the gateway in front of it) is failing."""


class ModelDown(TransientGatewayError):
    """The model is marked down fleet-wide; a call with a fallback goes there."""


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway is and what to send it."""

    base_url: str
    token: str | None = None
    openai_key: str | None = None
    anthropic_key: str | None = None
    timeout_s: float = 60.0
    price_overrides: dict[str, dict[str, float]] | None = None
    # Never answer from AI Gateway's cache (CACHES_ENABLED=false).
    skip_cache: bool = False
    # A primary model with a fallback is marked down after `down_after` 5xx or connection errors
    # within `down_window_s` (fleet-wide), and then skipped for `down_s`.
    down_after: int = 5
    down_window_s: float = 10.0
    down_s: float = 30.0
    # Pipelines sent with `cf-aig-collect-log-payload: false` (GATEWAY_NO_LOG_PAYLOAD).
    no_log_payload: tuple[str, ...] = gateway_headers.NO_LOG_PAYLOAD_DEFAULT


@dataclass(frozen=True)
class CallResult:
    """What one model call returned and cost."""

    text: str
    usage: Usage
    cost_nano: int
    cache_status: str
    log_id: str | None
    latency_ms: float
    model: str
    provider: str
    # The prompt's primary model when `model` is its fallback (the primary was down or throttled).
    fallback_from: str | None = None
    # Where the budget for this call came from ("batch", "interactive"; "" when not paced).
    lane: str = ""
    # The provider's rate-limit headers (read by the pacing, then dropped).
    rate_headers: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    step: int | None = None  # cf-aig-step: which step of a gateway fallback chain answered

    @property
    def served(self) -> Served:
        return Served.GATEWAY_CACHE if self.cache_status == "HIT" else Served.FRESH


def provider_of(model: str) -> str:
    provider = model.split("/", 1)[0] if "/" in model else ""
    if provider not in PROVIDERS:
        raise PermanentGatewayError(
            f"model {model!r} must be '<provider>/<name>' with provider one of {', '.join(PROVIDERS)}"
        )
    return provider


def response_format_for(model: type[BaseModel]) -> dict[str, Any]:
    """Structured output by the model's JSON schema (litellm makes it a tool call for Anthropic)."""
    # A fresh copy per call (litellm may rewrite it for a provider), from a cached text:
    # generating the schema costs ~0.6 ms per call, parsing it back ~20 us.
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": json.loads(_schema_text(model)), "strict": False},
    }


@functools.cache
def _schema_text(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema())


def _metadata(ctx: CallContext, prompt_ref: str) -> str:
    # AI Gateway accepts at most 5 flat entries.
    meta = {"store": ctx.store, "pipeline": ctx.pipeline, "prompt": prompt_ref, "job": ctx.job_id}
    if ctx.agent:
        meta["agent"] = ctx.agent
    return json.dumps(meta, separators=(",", ":"))


class GatewayClient:
    """Async chat completions through AI Gateway; safe to share across hundreds of calls.

    Calls go out on this client's own aiohttp session per event loop (litellm's
    `shared_session`), which `aclose()` closes before the loop ends. litellm keeps the first
    session it was given per loop: calls after `aclose()` on that loop use one of its own.
    """

    def __init__(self, config: GatewayConfig, limiter: ModelLimiter | None = None) -> None:
        self.config = config
        self.limiter = limiter
        self._ll = litellm()
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}
        # Per model: the provider's prompt tokens over our estimate (the schema, framing), learned
        # from responses, so the token budget is charged what the provider will count.
        self._token_ratio: dict[str, float] = {}

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            self._sessions = {other: s for other, s in self._sessions.items() if not other.is_closed()}
            # No cap on connections: the worker's --threads bounds the calls in flight.
            session = self._sessions[loop] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return session

    async def aclose(self, *, litellm_clients: bool = False) -> None:
        """Close this event loop's connections; call it before the loop ends (the CLI, evals, a
        worker's shutdown): a session left open is a traceback when the interpreter exits. With
        `litellm_clients`, litellm's own cached clients too (its public clean-up call; they are
        the process's, so only when no loop will call again: a worker's shutdown)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()
        if litellm_clients:
            await self._ll.close_litellm_async_clients()

    def warm_up(self, model: str, messages: list[dict[str, Any]]) -> None:
        """Run litellm's whole path for `model` once, without the network (a mocked answer)."""
        self._ll.completion(model=model, messages=messages, mock_response="{}", api_key="warm-up")

    def headers(
        self,
        ctx: CallContext,
        prompt_ref: str,
        *,
        cache_ttl: int | None = None,
        cache_key: str | None = None,
        skip_cache: bool = False,
    ) -> dict[str, str]:
        """AI Gateway's request headers for one call.

        The gateway cache is keyed per store (`cf-aig-cache-key` = `{store}:{key}`): without a key
        AI Gateway keys on the request body alone, and one merchant would be served, free, what
        another generated (and could tell that it had).
        """
        headers = {"cf-aig-metadata": _metadata(ctx, prompt_ref)}
        if self.config.token:
            headers["cf-aig-authorization"] = f"Bearer {self.config.token}"
        if skip_cache or self.config.skip_cache:
            headers["cf-aig-skip-cache"] = "true"
        elif cache_ttl:
            if not cache_key:
                raise PermanentGatewayError(f"{prompt_ref}: a gateway cache TTL needs a cache key")
            headers["cf-aig-cache-ttl"] = str(max(60, int(cache_ttl)))
            headers["cf-aig-cache-key"] = f"{ctx.store}:{cache_key}"
        # Event id, request timeout, log payload, trace context (agents/gateway_headers.py).
        headers.update(
            gateway_headers.call_headers(
                ctx, timeout_s=self.config.timeout_s, no_log_payload=self.config.no_log_payload
            )
        )
        return headers

    def _api_key(self, provider: str) -> str:
        key = self.config.openai_key if provider == "openai" else self.config.anthropic_key
        # With keys stored in the gateway (BYOK) the provider key is not needed, but
        # litellm insists on one; the gateway ignores a placeholder.
        return key or "gateway-managed"

    async def complete(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        ctx: CallContext,
        prompt_ref: str,
        response_model: type[BaseModel] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        cache_ttl: int | None = None,
        cache_key: str | None = None,
        skip_cache: bool = False,
        prompt_tokens: int | None = None,
        limit: Limit | None = None,
        fallback_model: str | None = None,
    ) -> CallResult:
        """One chat completion, paced to the model's budget, on `fallback_model` when the primary fails.

        `prompt_tokens` is the caller's estimate (the budget check's); `limit` the prompt's own
        budget for `model` when MODEL_LIMITS names none. Raises `RateLimited`,
        `TransientGatewayError` or `PermanentGatewayError`.
        """
        call = functools.partial(
            self._paced,
            messages=messages,
            ctx=ctx,
            prompt_ref=prompt_ref,
            response_model=response_model,
            temperature=temperature,
            max_tokens=max_tokens,
            cache_ttl=cache_ttl,
            cache_key=cache_key,
            skip_cache=skip_cache,
            prompt_tokens=prompt_tokens,
        )
        if not fallback_model:
            return await call(model, limit)
        try:
            return await call(model, limit, primary=True)
        except (ModelDown, NoSlot) as exc:
            reason = str(exc)
        except ProviderDown as exc:
            # One retry layer (Dramatiq's): this job's attempt fails, unless this failure is the one
            # that marks the model down for everyone; then the fallback serves it now.
            if self.limiter is None or not await self.limiter.note_failure(
                model,
                after=self.config.down_after,
                window_s=self.config.down_window_s,
                down_s=self.config.down_s,
            ):
                raise
            reason = str(exc)
        log.warning(
            "model_fallback", store=ctx.store, model=model, fallback=fallback_model, reason=reason[:200]
        )
        result = await call(fallback_model, None)
        return replace(result, fallback_from=model)

    async def _paced(
        self, model: str, limit: Limit | None, *, primary: bool = False, **call: Any
    ) -> CallResult:
        """`_call` within `model`'s rate budget (429s waited out and tried again while time allows).

        `primary`: the call has a fallback, so a model marked down raises `ModelDown` at once.
        """
        limiter = self.limiter
        budget = limiter.limit_for(model, limit) if limiter is not None else None
        if limiter is None or budget is None:
            if primary and limiter is not None and await limiter.down_for(model):
                raise ModelDown(f"{model} is marked down")
            return await self._call(model, **call)
        ctx: CallContext = call["ctx"]
        tokens = await self._charge(model, call)

        interactive = ctx.lane == "interactive"

        async def once() -> CallResult:
            wait_s = self._wait_cap(ctx)
            grant = await limiter.acquire(
                model, tokens, budget, interactive=interactive, max_wait_s=wait_s, check_down=primary
            )
            if grant.down_s:
                raise ModelDown(f"{model} is marked down for {grant.down_s:.0f}s more")
            try:
                result = await self._call(model, **call)
            except RateLimited as exc:
                # Every process's next slot waits out what the provider asked for.
                await limiter.penalize(model, exc.retry_after if exc.retry_after is not None else 1.0)
                raise
            if result.rate_headers:
                await limiter.observe(model, budget, parse_rate_headers(result.rate_headers))
            return replace(result, lane=grant.lane, rate_headers={})

        # A 429 is tried again after its retry-after while the call may still wait; a `NoSlot`
        # (the next slot is past what the call may wait) is not.
        give_up_s = max(self._wait_cap(ctx), 0.5)
        return await acall(
            once, on=RateLimited, attempts=RATE_LIMITED_TRIES, base_s=0.2, cap_s=5.0, give_up_s=give_up_s
        )

    def _wait_cap(self, ctx: CallContext) -> float:
        """How long a call of `ctx` may wait for a slot: until its deadline, else the batch lane's cap."""
        if ctx.deadline is not None:
            return max(0.0, ctx.deadline - time.time() - DEADLINE_MARGIN_S)
        return self.limiter.max_wait_s if self.limiter is not None else 0.0

    async def _charge(self, model: str, call: dict[str, Any]) -> int:
        """Tokens the budget is charged: the prompt estimate (as the provider counts it) plus `max_tokens`."""
        estimate = call.get("prompt_tokens")
        if estimate is None:  # counted here, and kept for `_learn` to compare with the provider's count
            estimate = call["prompt_tokens"] = await count_messages_async(call["messages"], model)
        ratio = self._token_ratio.get(model, 1.0)
        return math.ceil(estimate * ratio) + int(call.get("max_tokens") or 0)

    def _learn(self, model: str, estimate: int | None, counted: int) -> None:
        if estimate and counted > 0:
            seen = min(3.0, max(1.0, counted / estimate))
            self._token_ratio[model] = 0.8 * self._token_ratio.get(model, seen) + 0.2 * seen

    async def _call(
        self,
        model: str,
        *,
        messages: list[dict[str, Any]],
        ctx: CallContext,
        prompt_ref: str,
        response_model: type[BaseModel] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        cache_ttl: int | None = None,
        cache_key: str | None = None,
        skip_cache: bool = False,
        prompt_tokens: int | None = None,
    ) -> CallResult:
        """One chat completion on `model`, nothing more."""
        provider = provider_of(model)
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "api_base": f"{self.config.base_url}/{provider}",
            "api_key": self._api_key(provider),
            "extra_headers": self.headers(
                ctx, prompt_ref, cache_ttl=cache_ttl, cache_key=cache_key, skip_cache=skip_cache
            ),
            "timeout": self.config.timeout_s,
            # Dramatiq retries the job; the client must not retry underneath it.
            "max_retries": 0,
            "shared_session": self._session(),
        }
        if response_model is not None:
            kwargs["response_format"] = response_format_for(response_model)
        optional = {"temperature": temperature, "max_tokens": max_tokens}
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        started = time.perf_counter()
        try:
            response = await self._ll.acompletion(**kwargs)
        except Exception as exc:  # translated below; nothing from litellm escapes
            raise translate_error(exc) from None
        latency_ms = (time.perf_counter() - started) * 1000
        result = self._result(response, model, provider, latency_ms)
        if result.cache_status != "HIT":
            self._learn(model, prompt_tokens, result.usage.prompt_tokens)
        return result

    def _result(self, response: Any, model: str, provider: str, latency_ms: float) -> CallResult:
        if not isinstance(response, self._ll.ModelResponse) or not response.choices:
            raise TransientGatewayError(f"gateway returned no completion ({type(response).__name__})")
        message = response.choices[0].message
        text = message.content or ""
        if not text and message.tool_calls:
            text = message.tool_calls[0].function.arguments or ""
        headers = response.hidden_params.get("additional_headers") or {}
        status = str(headers.get(CACHE_STATUS) or "").upper() or "NONE"
        log_id = headers.get(LOG_ID)
        usage = _usage(response.usage)
        cost = 0 if status == "HIT" else price_for(model, self.config.price_overrides).cost_nano(usage)
        return CallResult(
            text=text,
            usage=usage,
            cost_nano=cost,
            cache_status=status,
            log_id=str(log_id) if log_id else None,
            latency_ms=latency_ms,
            model=model,
            provider=provider,
            step=gateway_headers.served_step(headers),
            rate_headers={k: v for k, v in headers.items() if "ratelimit" in str(k)},
        )


def _usage(raw: Any) -> Usage:
    """The project's `Usage` from a `litellm.Usage` (OpenAI and Anthropic report cached tokens apart)."""
    if raw is None:
        return Usage()
    details = raw.prompt_tokens_details
    cached = int(getattr(details, "cached_tokens", 0) or 0) or int(
        getattr(raw, "cache_read_input_tokens", 0) or 0
    )
    write = int(getattr(raw, "cache_creation_input_tokens", 0) or 0)
    return Usage(int(raw.prompt_tokens or 0), cached, write, int(raw.completion_tokens or 0))


def _retry_after(exc: Any) -> float | None:
    # `litellm_response_headers` is set on both providers' paths; `response.headers` on OpenAI's.
    headers = getattr(exc, "litellm_response_headers", None) or getattr(exc, "response", None)
    return retry_after_s(getattr(headers, "headers", headers) or {})


def translate_error(exc: BaseException) -> Exception:
    """Map a litellm exception (or anything else a call raised) to the project's gateway errors."""
    llx = litellm().exceptions
    status = getattr(exc, "status_code", None)
    message = scrub(f"{type(exc).__name__}: {str(exc)[:500]}")
    if isinstance(exc, llx.RateLimitError):
        # The provider's limit, or the gateway's rate or spend limit.
        return RateLimited(
            f"rate limited by the gateway or provider ({message})", retry_after=_retry_after(exc)
        )
    refused = (llx.AuthenticationError, llx.PermissionDeniedError, llx.BadRequestError, llx.NotFoundError)
    transient = (llx.Timeout, llx.APIConnectionError, llx.InternalServerError, llx.ServiceUnavailableError)
    # Down: no connection, or a 5xx the provider answered (response headers). A timeout is not,
    # nor a garbled 200 (litellm calls that a 500 too, without headers).
    answered_5xx = isinstance(status, int) and status >= 500 and status != 504
    answered_5xx = answered_5xx and bool(getattr(exc, "litellm_response_headers", None))
    unreachable = isinstance(exc, llx.APIConnectionError) and not isinstance(exc, llx.Timeout)
    if unreachable or answered_5xx:
        return ProviderDown(f"gateway call failed, provider down? ({message})")
    if isinstance(exc, transient) or (isinstance(status, int) and (status >= 500 or status in (408, 409))):
        return TransientGatewayError(f"gateway call failed transiently ({message})")
    if isinstance(exc, refused) or (isinstance(status, int) and 400 <= status < 500):
        hint = " (check AI_GATEWAY_TOKEN and the provider keys)" if status in (401, 403) else ""
        return PermanentGatewayError(f"gateway refused the call with {status}{hint} ({message})")
    return TransientGatewayError(f"gateway call failed ({message})")
