"""Faults served on demand: a queue of planned failures, and provider-shaped error bodies."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

BEHAVIOUR_KINDS = frozenset({"timeout", "malformed_json", "truncated", "invalid_output", "latency"})
_STATUS_KIND = re.compile(r"^[45]\d\d$")
DEFAULT_TIMEOUT_MS = 30_000


@dataclass
class Fault:
    """One planned failure; `times` counts down as matching requests take it."""

    kind: str
    retry_after: float | None = None
    latency_ms: int = 0
    match: str | None = None
    times: int = 1

    @property
    def status(self) -> int | None:
        """The HTTP status this fault answers with, if it is an error status."""
        return int(self.kind) if _STATUS_KIND.match(self.kind) else None

    def as_dict(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {
            "kind": self.kind,
            "retry_after": self.retry_after,
            "latency_ms": self.latency_ms,
            "match": self.match,
            "times": self.times,
        }


def parse_fault(raw: Any) -> Fault:
    """Validate one fault spec from the admin API (ValueError when malformed)."""
    if not isinstance(raw, dict):
        raise ValueError("each fault must be an object")
    kind = str(raw.get("kind", ""))
    if kind not in BEHAVIOUR_KINDS and not _STATUS_KIND.match(kind):
        raise ValueError(f"unknown fault kind {kind!r}")
    retry_after = raw.get("retry_after")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, int | float)
    ):
        raise ValueError("retry_after must be a number or null")
    latency_ms = raw.get("latency_ms") or 0
    times = raw.get("times", 1)
    match = raw.get("match")
    if not isinstance(latency_ms, int) or latency_ms < 0:
        raise ValueError("latency_ms must be a non-negative integer")
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise ValueError("times must be a positive integer")
    if match is not None and not isinstance(match, str):
        raise ValueError("match must be a string")
    return Fault(kind=kind, retry_after=retry_after, latency_ms=latency_ms, match=match or None, times=times)


class FaultQueue:
    """Planned faults in order; each matching request takes the first fault that matches it."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def __len__(self) -> int:
        return len(self._faults)

    def extend(self, faults: list[Fault]) -> None:
        """Append faults to the end of the queue."""
        self._faults.extend(faults)

    def clear(self) -> None:
        """Drop every queued fault."""
        self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        """The queue, for the admin API."""
        return [f.as_dict() for f in self._faults]

    def take(self, body: bytes) -> Fault | None:
        """The next fault matching `body` (counting one use of it), or None."""
        if not self._faults:
            return None
        text: str | None = None
        for index, fault in enumerate(self._faults):
            if fault.match is not None:
                if text is None:
                    text = body.decode("utf-8", "replace")
                if fault.match not in text:
                    continue
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[index]
            return fault
        return None


_OPENAI_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "server_error"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "timeout"),
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def error_body(provider: str, status: int, message: str) -> bytes:
    """An error body shaped like the provider's own (`openai` or `anthropic`)."""
    if provider == "anthropic":
        kind = _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        payload: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        err_type, code = _OPENAI_TYPES.get(
            status, ("server_error", "server_error") if status >= 500 else ("invalid_request_error", None)
        )
        payload = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return json.dumps(payload).encode()


def gateway_error_body(code: int, message: str) -> bytes:
    """An error body shaped like AI Gateway's own (for errors raised before any provider)."""
    return json.dumps(
        {"success": False, "result": [], "messages": [], "errors": [{"code": code, "message": message}]}
    ).encode()
