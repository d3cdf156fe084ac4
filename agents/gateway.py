"""The one gateway client: litellm pointed at Cloudflare AI Gateway (or the dev gateway).

Callers get a typed `CallResult` and the project's own errors; litellm and provider
exceptions never leave this module.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import BaseModel

from adapters.errors import PermanentGatewayError, RateLimited, TransientGatewayError
from adapters.logs import scrub
from agents import gateway_headers
from agents._litellm import litellm
from agents.pricing import price_for
from agents.usage import CallContext, Served, Usage

PROVIDERS = ("openai", "anthropic")
# litellm hands a provider's response headers back prefixed (ModelResponse.set_provider_response_headers).
CACHE_STATUS = "llm_provider-cf-aig-cache-status"
LOG_ID = "llm_provider-cf-aig-log-id"


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

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._ll = litellm()
        self._sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            self._sessions = {other: s for other, s in self._sessions.items() if not other.is_closed()}
            # No cap on connections: the worker's --threads bounds the calls in flight.
            session = self._sessions[loop] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return session

    async def aclose(self) -> None:
        """Close this event loop's connections; call it before the loop ends (the CLI, evals)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

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
    ) -> CallResult:
        """One chat completion; raises `RateLimited`, `TransientGatewayError` or `PermanentGatewayError`."""
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
        return self._result(response, model, provider, latency_ms)

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
    headers = getattr(headers, "headers", headers) or {}
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, TypeError, ValueError):
        return None


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
    if isinstance(exc, transient) or (isinstance(status, int) and (status >= 500 or status in (408, 409))):
        return TransientGatewayError(f"gateway call failed transiently ({message})")
    if isinstance(exc, refused) or (isinstance(status, int) and 400 <= status < 500):
        hint = " (check AI_GATEWAY_TOKEN and the provider keys)" if status in (401, 403) else ""
        return PermanentGatewayError(f"gateway refused the call with {status}{hint} ({message})")
    return TransientGatewayError(f"gateway call failed ({message})")
