"""Helpers shared by the routes: the context, path parameters, timestamps, idempotent POSTs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Header, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from domain.keys import STORE_RE
from entrypoints.api.context import ApiContext
from entrypoints.api.idempotency import fingerprint
from entrypoints.api.schemas import UUID_PATTERN

# Declares the bearer scheme in the OpenAPI document; the gate does the checking.
bearer = HTTPBearer(auto_error=False, description="A store's API token, or the ops token")

StorePath = Annotated[str, Path(pattern=STORE_RE.pattern, description="Store slug, e.g. stanley1913")]
IdPath = Annotated[str, Path(pattern=UUID_PATTERN, description="An id this API returned (a UUID)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying a POST with the same key returns the first answer, not a second job",
    ),
]


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def idempotent(
    ctx: ApiContext,
    scope: str,
    key: str | None,
    payload: Callable[[], Any],
    work: Callable[[], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    """Run `work` once per Idempotency-Key; a retry gets the stored answer back."""
    if key is None:
        status, body = work()
        return JSONResponse(body, status_code=status)
    digest = fingerprint(payload())  # computed only when a key is given
    stored = ctx.idempotency.begin(scope, key, digest)
    if stored is not None:
        return JSONResponse(
            stored["response"], status_code=int(stored["status"]), headers={"Idempotent-Replayed": "true"}
        )
    try:
        status, body = work()
    except BaseException:
        ctx.idempotency.release(scope, key)
        raise
    ctx.idempotency.finish(scope, key, digest, status, body)
    return JSONResponse(body, status_code=status)
