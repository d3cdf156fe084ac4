"""The Cloudflare API's AI Gateway log feedback, as the dev gateway answers it.

`PATCH /client/v4/accounts/{account}/ai-gateway/gateways/{gateway}/logs/{id}` with
`Authorization: Bearer <API token>` and `{"feedback": -1|0|1, "score": 0-100, "metadata": {...}}`
(every field optional), answered in the Cloudflare API's envelope
(`{"success", "errors", "messages", "result"}`). `GET /_dev/feedback` lists what was received,
so tests can check what a reviewer's decision sent.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PATH = "/client/v4/accounts/{account}/ai-gateway/gateways/{gateway}/logs/{log_id}"
_LOG_ID = re.compile(r"^[A-Za-z0-9]{10,64}$")
_KEEP = 10_000


def _envelope(status: int, result: Any = None, error: str | None = None) -> JSONResponse:
    errors = [{"code": 7003 if status == 404 else 10000, "message": error}] if error else []
    return JSONResponse(
        {"success": error is None, "errors": errors, "messages": [], "result": result}, status_code=status
    )


def _problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = set(body) - {"feedback", "score", "metadata"}
    if unknown:
        return f"unknown field(s): {', '.join(sorted(unknown))}"
    feedback, score, metadata = body.get("feedback"), body.get("score"), body.get("metadata")
    if feedback is not None and (not isinstance(feedback, int | float) or not -1 <= feedback <= 1):
        return "feedback must be a number from -1 to 1"
    if score is not None and (not isinstance(score, int | float) or not 0 <= score <= 100):
        return "score must be a number from 0 to 100"
    if metadata is not None and (
        not isinstance(metadata, dict) or any(isinstance(v, dict | list) for v in metadata.values())
    ):
        return "metadata must be an object of strings, numbers or booleans"
    return None


class LogFeedback:
    """Feedback received per log id (the last of each), and the handlers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def patch(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return _envelope(401, error="Authentication error")
        log_id = request.path_params["log_id"]
        if not _LOG_ID.fullmatch(log_id):
            return _envelope(404, error="Log not found")
        try:
            body = await request.json()
        except ValueError:
            return _envelope(400, error="the body must be JSON")
        problem = _problem(body)
        if problem:
            return _envelope(400, error=problem)
        entry = {
            "account": request.path_params["account"],
            "gateway": request.path_params["gateway"],
            "log_id": log_id,
            **body,
        }
        self.received.append(entry)
        del self.received[:-_KEEP]
        return _envelope(200, result={})

    async def listed(self, request: Request) -> Response:
        return JSONResponse({"feedback": self.received})

    def reset(self) -> None:
        self.received.clear()

    def routes(self) -> list[Route]:
        return [
            Route(PATH, self.patch, methods=["PATCH"]),
            Route("/_dev/feedback", self.listed, methods=["GET"]),
        ]
