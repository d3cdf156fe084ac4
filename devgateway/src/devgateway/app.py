"""Starlette routes: AI Gateway's OpenAI and Anthropic endpoints, and the `/_dev/` admin API."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devgateway import tokens
from devgateway.answers import BadRequest, anthropic_message, openai_completion
from devgateway.faults import (
    DEFAULT_TIMEOUT_MS,
    Fault,
    error_body,
    gateway_error_body,
    parse_fault,
)
from devgateway.feedback import LogFeedback
from devgateway.ratelimit import parse_limits
from devgateway.state import PROVIDER_NAMES, GatewayState

JSON_TYPE = "application/json"
MALFORMED_BODY = b"<html><head><title>502 Bad Gateway</title></head><body>upstream hiccup</body></html>"
_MAX_METADATA_ENTRIES = 5

Builder = Callable[[GatewayState, dict[str, Any], str, bool], bytes]


class _GatewayError(Exception):
    """A request rejected by the gateway itself, before any provider."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _log_id() -> str:
    return uuid.uuid4().hex.upper()[:26]


def _check_metadata(raw: str | None) -> None:
    if raw is None:
        return
    try:
        meta = json.loads(raw)
    except ValueError:
        raise _GatewayError(400, 2016, "cf-aig-metadata must be a JSON object") from None
    if not isinstance(meta, dict):
        raise _GatewayError(400, 2016, "cf-aig-metadata must be a JSON object")
    if len(meta) > _MAX_METADATA_ENTRIES:
        raise _GatewayError(400, 2016, "cf-aig-metadata accepts at most 5 entries")
    if any(isinstance(v, dict | list) for v in meta.values()):
        raise _GatewayError(400, 2016, "cf-aig-metadata values must be strings, numbers or booleans")


def _number_header(headers: Headers, name: str) -> float | None:
    raw = headers.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise _GatewayError(400, 2015, f"{name} must be a number") from None
    return value if value > 0 else None


class Gateway:
    """Request handlers bound to one `GatewayState`."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None

    def close(self) -> None:
        """Release every request that is hanging on a fault or latency (safe from any thread)."""
        if self._loop is not None and self._closing is not None:
            self._loop.call_soon_threadsafe(self._closing.set)

    async def _hang(self, request: Request, seconds: float) -> None:
        """Wait `seconds`, or less if the client goes away or the server shuts down first."""
        if self._closing is None:
            self._loop = asyncio.get_running_loop()
            self._closing = asyncio.Event()

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        watchers = {asyncio.ensure_future(disconnected()), asyncio.ensure_future(self._closing.wait())}
        try:
            await asyncio.wait(watchers, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()

    # --- provider endpoints ---------------------------------------------------

    async def openai(self, request: Request) -> Response:
        """POST .../openai/chat/completions."""
        return await self._model_call(request, "openai", openai_completion)

    async def anthropic(self, request: Request) -> Response:
        """POST .../anthropic/v1/messages."""
        return await self._model_call(request, "anthropic", anthropic_message)

    async def _model_call(self, request: Request, provider: str, build: Builder) -> Response:
        # Calls in flight, and the most seen at once: what a benchmark's concurrency reached.
        stats = self.state.stats
        stats.in_flight += 1
        stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            return await self._answer(request, provider, build)
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: Request, provider: str, build: Builder) -> Response:
        state = self.state
        state.stats.requests += 1
        raw = await request.body()
        headers = request.headers
        state.record_headers(headers)
        # One endpoint, no fallback chain here: the first (and only) step always serves.
        out_headers = {"cf-aig-log-id": _log_id(), "cf-aig-cache-status": "MISS", "cf-aig-step": "0"}
        try:
            _check_metadata(headers.get("cf-aig-metadata"))
            ttl = _number_header(headers, "cf-aig-cache-ttl")
            deadline_ms = _number_header(headers, "cf-aig-request-timeout")
        except _GatewayError as exc:
            return self._reply(exc.status, gateway_error_body(exc.code, str(exc)), out_headers)
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return self._reply(400, error_body(provider, 400, f"invalid JSON body: {exc}"), out_headers)

        fault = state.faults.take(raw)
        if fault is not None:
            state.stats.faults_served += 1
            early = await self._early_fault(request, provider, fault, deadline_ms, out_headers)
            if early is not None:
                return early

        clean = fault is None or fault.kind == "latency"
        digest = hashlib.blake2b(raw, digest_size=20).hexdigest()
        skip = headers.get("cf-aig-skip-cache", "").strip().lower() == "true"
        cache_key: str | None = None
        if ttl is not None and not skip and clean:
            custom = headers.get("cf-aig-cache-key")
            cache_key = f"{provider}:key:{custom}" if custom else f"{provider}:{request.url.path}:{digest}"
            hit = state.cached(cache_key)
            if hit is not None:
                state.stats.cache_hits += 1
                return self._reply(
                    200, hit.body, {**hit.headers, **out_headers, "cf-aig-cache-status": "HIT"}
                )

        refused = self._provider_refusal(provider, body, out_headers)
        if refused is not None:
            return refused

        latency_ms = state.behaviour.latency_ms
        if latency_ms > 0:
            if deadline_ms is not None and latency_ms > deadline_ms:
                await self._hang(request, deadline_ms / 1000)
                return self._timeout_reply(out_headers)
            await asyncio.sleep(latency_ms / 1000)

        invalid = fault is not None and fault.kind == "invalid_output"
        try:
            answer = build(state, body, digest, invalid)
        except BadRequest as exc:
            return self._reply(400, error_body(provider, 400, str(exc)), out_headers)
        id_header = "request-id" if provider == "anthropic" else "x-request-id"
        out_headers[id_header] = f"req_{digest[:24]}"
        if fault is not None and fault.kind == "malformed_json":
            return self._reply(200, MALFORMED_BODY, out_headers)
        if fault is not None and fault.kind == "truncated":
            return self._reply(200, answer[: max(1, len(answer) // 2)], out_headers)
        if cache_key is not None and ttl is not None:
            state.remember(cache_key, ttl, answer, {id_header: out_headers[id_header]})
        return self._reply(200, answer, out_headers)

    def _provider_refusal(
        self, provider: str, body: dict[str, Any], out_headers: dict[str, str]
    ) -> Response | None:
        """503 from a provider marked down, or 429 past a model's limits (headers added either way)."""
        state = self.state
        if provider in state.down:
            return self._reply(
                503, error_body(provider, 503, f"{provider} is down (dev gateway)"), out_headers
            )
        admitted, headers = state.limits.check(str(body.get("model", "")), body)
        out_headers.update(headers)
        if admitted:
            return None
        state.stats.rate_limited += 1
        message = "Rate limit reached for requests or tokens per minute (dev gateway)"
        return self._reply(429, error_body(provider, 429, message), out_headers)

    async def _early_fault(
        self,
        request: Request,
        provider: str,
        fault: Fault,
        deadline_ms: float | None,
        out_headers: dict[str, str],
    ) -> Response | None:
        """Serve the part of `fault` that comes before any answer; None to go on answering."""
        delay_ms = float(fault.latency_ms)
        if fault.kind == "timeout":
            delay_ms = delay_ms or DEFAULT_TIMEOUT_MS
        if deadline_ms is not None and delay_ms > deadline_ms:
            await self._hang(request, deadline_ms / 1000)
            return self._timeout_reply(out_headers)
        if fault.kind == "timeout":
            await self._hang(request, delay_ms / 1000)
            self.state.stats.by_status["504"] += 1
            return self._reply(
                504, error_body(provider, 504, "the provider did not answer in time"), out_headers
            )
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        status = fault.status
        if status is None:
            return None
        headers = dict(out_headers)
        if fault.retry_after is not None:
            value = fault.retry_after
            headers["retry-after"] = str(int(value)) if float(value).is_integer() else str(value)
        messages = {
            429: "Rate limit reached for requests (dev gateway fault)",
            500: "The server had an error while processing your request (dev gateway fault)",
            503: "The service is temporarily overloaded (dev gateway fault)",
        }
        message = messages.get(status, f"dev gateway fault {status}")
        return self._reply(status, error_body(provider, status, message), headers)

    def _timeout_reply(self, out_headers: dict[str, str]) -> Response:
        return self._reply(
            504, gateway_error_body(2009, "Request timed out (cf-aig-request-timeout)"), out_headers
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> Response:
        self.state.stats.by_status[str(status)] += 1
        return Response(body, status_code=status, headers=headers, media_type=JSON_TYPE)

    # --- admin API ----------------------------------------------------------

    async def health(self, request: Request) -> Response:
        """GET /_dev/health."""
        return JSONResponse({"ok": True})

    async def config(self, request: Request) -> Response:
        """GET or POST /_dev/config: persistent latency, hostility, rate limits and providers down."""
        if request.method == "POST":
            try:
                payload = await request.json()
                if not isinstance(payload, dict):
                    raise ValueError("expected a JSON object")
                latency = payload.get("latency_ms", self.state.behaviour.latency_ms)
                hostile = payload.get("hostile", self.state.behaviour.hostile)
                if not isinstance(latency, int) or isinstance(latency, bool) or latency < 0:
                    raise ValueError("latency_ms must be a non-negative integer")
                if not isinstance(hostile, bool):
                    raise ValueError("hostile must be a boolean")
                payloads = payload.get("payloads", list(self.state.behaviour.payloads))
                if not isinstance(payloads, list) or not all(isinstance(p, str) and p for p in payloads):
                    raise ValueError("payloads must be a list of non-empty strings")
                limits = self.state.limits
                spec = parse_limits(payload.get("rate_limits", limits.spec))
                burst_s = payload.get("burst_s", limits.burst_s)
                if isinstance(burst_s, bool) or not isinstance(burst_s, int | float) or burst_s <= 0:
                    raise ValueError(
                        "burst_s must be a positive number (seconds of the limit a burst may use)"
                    )
                down = payload.get("down", sorted(self.state.down))
                if not isinstance(down, list) or not set(down) <= set(PROVIDER_NAMES):
                    raise ValueError(f"down must be a list of providers ({', '.join(PROVIDER_NAMES)})")
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            self.state.behaviour.latency_ms = latency
            self.state.behaviour.hostile = hostile
            self.state.behaviour.payloads = tuple(payloads)
            if spec != limits.spec or burst_s != limits.burst_s:
                limits.configure(spec, float(burst_s))
            self.state.down = set(down)
        view = self.state.behaviour.as_dict()
        limits = self.state.limits
        view.update(rate_limits=limits.spec, burst_s=limits.burst_s, down=sorted(self.state.down))
        return JSONResponse(view)

    async def faults(self, request: Request) -> Response:
        """GET, POST (append) or DELETE (clear) /_dev/faults."""
        if request.method == "DELETE":
            self.state.faults.clear()
        elif request.method == "POST":
            try:
                payload = await request.json()
                raw = payload.get("faults") if isinstance(payload, dict) else None
                if not isinstance(raw, list):
                    raise ValueError('expected {"faults": [...]}')
                parsed = [parse_fault(item) for item in raw]
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            self.state.faults.extend(parsed)
        return JSONResponse({"queued": len(self.state.faults), "faults": self.state.faults.pending()})

    async def stats(self, request: Request) -> Response:
        """GET /_dev/stats."""
        limits = self.state.limits
        return JSONResponse(
            {
                **self.state.stats.as_dict(),
                "limited_requests": limits.charged_requests,
                "limited_tokens": limits.charged_tokens,
            }
        )

    async def requests(self, request: Request) -> Response:
        """GET /_dev/requests: the AI Gateway and trace headers of recent model calls, oldest first."""
        return JSONResponse({"requests": list(self.state.seen_headers)})

    async def reset(self, request: Request) -> Response:
        """POST /_dev/reset: forget stats, caches, faults and runtime config."""
        self.state.reset()
        return JSONResponse({"ok": True})

    async def not_found(self, request: Request) -> Response:
        """Any other path under a gateway base URL."""
        return self._reply(
            404,
            gateway_error_body(2001, f"no such provider endpoint: {request.url.path}"),
            {"cf-aig-log-id": _log_id(), "cf-aig-cache-status": "MISS"},
        )


def create_app(latency_ms: int = 0, hostile: bool = False) -> Starlette:
    """A dev gateway ASGI app with its own state."""
    tokens.warm_up()
    state = GatewayState(latency_ms=latency_ms, hostile=hostile)
    gw = Gateway(state)
    feedback = LogFeedback()
    base = "/v1/{account}/{gateway}"
    routes = [
        Route(f"{base}/openai/chat/completions", gw.openai, methods=["POST"]),
        Route(f"{base}/openai/v1/chat/completions", gw.openai, methods=["POST"]),
        Route(f"{base}/anthropic/v1/messages", gw.anthropic, methods=["POST"]),
        Route("/_dev/health", gw.health, methods=["GET"]),
        Route("/_dev/config", gw.config, methods=["GET", "POST"]),
        Route("/_dev/faults", gw.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_dev/stats", gw.stats, methods=["GET"]),
        Route("/_dev/requests", gw.requests, methods=["GET"]),
        Route("/_dev/reset", gw.reset, methods=["POST"]),
        Route(base + "/{rest:path}", gw.not_found, methods=["GET", "POST", "PUT", "DELETE"]),
        *feedback.routes(),  # the Cloudflare API's log feedback (a reviewer's decisions)
    ]
    app = Starlette(routes=routes)
    app.state.gateway = state
    app.state.handlers = gw
    return app
