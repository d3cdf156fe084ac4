"""OpenAI-format chat completions over one pooled aiohttp session per event loop.

AI Gateway's `/openai` endpoint speaks OpenAI's own API, so these calls need no translation.
litellm's per-call machinery costs ~5 ms of CPU (its request set-up in a thread pool, cost
calculation, logging payloads); a direct POST on a kept-alive connection costs ~0.4 ms. That
is the difference between ~100 and ~250 calls per second for one worker process
(bench/RESULTS.md). Anthropic keeps litellm, which translates the request.

Raises `HttpFailure` (status, retry-after, message) and `HttpUnreachable`; `agents.gateway`
turns them into the project's errors.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp


class HttpFailure(Exception):
    """The gateway answered with an error status (or a body that is not a completion)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class HttpUnreachable(Exception):
    """No answer: connection refused or reset, or the call timed out."""


@dataclass(frozen=True)
class Reply:
    """A completion's JSON body and the response headers (names lower-cased)."""

    body: dict[str, Any]
    headers: dict[str, str]


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class OpenAIHttp:
    """POSTs to `{base}/chat/completions`; safe to share by every call of a process."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}

    def _session(self) -> aiohttp.ClientSession:
        # aiohttp sessions belong to one event loop; a worker has one, tests may have several.
        loop = asyncio.get_running_loop()
        found = self._sessions.get(id(loop))
        if found is not None and found[0] is loop and not found[1].closed:
            return found[1]
        for key, (other, _) in list(self._sessions.items()):
            if other.is_closed():
                del self._sessions[key]
        # No connection cap: the worker's --threads bounds calls in flight. No proxy or netrc
        # lookups per request (trust_env off): the gateway URL is configured explicitly.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=30)
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            trust_env=False,
            auto_decompress=True,
        )
        self._sessions[id(loop)] = (loop, session)
        return session

    async def chat(self, base_url: str, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        """One chat completion; the body is OpenAI's request format."""
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        sent = {"content-type": "application/json", "accept": "application/json", **headers}
        try:
            async with self._session().post(f"{base_url}/chat/completions", data=data, headers=sent) as resp:
                raw = await resp.read()
                got = {k.lower(): v for k, v in resp.headers.items()}
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise HttpUnreachable(f"{type(exc).__name__}: {exc}") from None
        if status >= 400:
            raise HttpFailure(status, _error_message(raw, status), _retry_after(got.get("retry-after")))
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise HttpFailure(502, f"the gateway's answer is not JSON: {raw[:120]!r}") from None
        if not isinstance(parsed, dict):
            raise HttpFailure(502, "the gateway's answer is not a JSON object")
        return Reply(parsed, got)

    async def close(self) -> None:
        """Close the current event loop's session (others close with their loops)."""
        found = self._sessions.pop(id(asyncio.get_running_loop()), None)
        if found is not None:
            await found[1].close()


def _error_message(raw: bytes, status: int) -> str:
    try:
        error = json.loads(raw).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return f"{status}: {str(message)[:300]}"
    except (ValueError, AttributeError):
        pass
    return f"{status}: {raw[:200]!r}"
