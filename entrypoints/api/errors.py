"""One error shape for every refusal: `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import math
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.errors import (
    AlreadyExists,
    BrokerUnavailable,
    InvalidInput,
    NotFound,
    StoreError,
    TransientStoreError,
)
from adapters.logs import get_logger

log = get_logger("api")


class ApiError(Exception):
    """A refusal with its HTTP status, a stable code and a message a person can act on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


# What a 503 that names no wait of its own says: every 503 tells the client when to come back.
DEFAULT_RETRY_AFTER_S = 5


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if status == 503 and not any(k.lower() == "retry-after" for k in headers or {}):
        headers = {**(headers or {}), "Retry-After": str(DEFAULT_RETRY_AFTER_S)}
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def invalid_field(field: str, message: str, rule: str = "invalid") -> ApiError:
    """A 422 naming the field and the rule it broke."""
    return ApiError(
        422,
        "invalid_request",
        f"{field}: {message}",
        details=[{"field": field, "rule": rule, "message": message}],
    )


def budget_spent(spent: Any) -> ApiError:
    """402 for a store whose daily budget is spent (`pipelines.budget_gate.Spent`): nothing was enqueued."""
    return ApiError(
        402,
        "budget_exhausted",
        spent.message,
        details=[{"field": "store", "in": "path", "rule": "daily_budget", "message": spent.message}],
        headers={"Retry-After": str(spent.retry_after_s)},
    )


def _field_name(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    parts = (
        [str(p) for p in loc[1:]] if where in ("body", "path", "query", "header") else [str(p) for p in loc]
    )
    return where, ".".join(parts) or where


def _describe_validation(exc: RequestValidationError) -> JSONResponse:
    details = []
    for err in exc.errors():
        where, field = _field_name(tuple(err.get("loc", ())))
        rule = str(err.get("type", "invalid"))
        message = str(err.get("msg", "is invalid"))
        ctx = err.get("ctx") or {}
        detail: dict[str, Any] = {"field": field, "in": where, "rule": rule, "message": message}
        if rule == "json_invalid":
            detail["field"], detail["message"] = "body", f"not valid JSON ({ctx.get('error', message)})"
        details.append(detail)
    summary = "; ".join(f"{d['field']}: {d['message']} ({d['rule']})" for d in details[:5])
    if len(details) > 5:
        summary += f" (+{len(details) - 5} more)"
    return error_response(422, "invalid_request", summary, details)


def install_handlers(app: FastAPI) -> None:
    """Translate project and framework errors into the one error shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _describe_validation(exc)

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(422, "invalid_input", str(exc))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "not_found", "not found")

    @app.exception_handler(AlreadyExists)
    async def _conflict(request: Request, exc: AlreadyExists) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    @app.exception_handler(BrokerUnavailable)
    async def _redis_down(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        log.error("api_redis_unavailable", error=str(exc))
        return error_response(
            503,
            "unavailable",
            "Redis is unavailable; retry shortly (ops: see /healthz)",
            None,
            {"Retry-After": "5"},
        )

    @app.exception_handler(redis.RedisError)
    async def _redis_error(request: Request, exc: redis.RedisError) -> JSONResponse:
        return await _redis_down(request, BrokerUnavailable(f"{type(exc).__name__}: {exc}"))

    @app.exception_handler(StoreError)
    async def _store_down(request: Request, exc: StoreError) -> JSONResponse:
        log.error("api_store_error", error=str(exc))
        if isinstance(exc, TransientStoreError):
            retry = max(1, math.ceil(exc.retry_after or 5))
            return error_response(
                503,
                "store_error",
                f"the object store failed; retry after {retry}s (ops: see /healthz)",
                None,
                {"Retry-After": str(retry)},
            )
        return error_response(
            502, "store_error", "the object store failed; retry shortly (ops: see /healthz)"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), None, dict(exc.headers or {}))


# --- the OpenAPI side: what each refusal is, in the one shape -----------------------------

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
WHY = {
    400: "A malformed Shopify delivery (`invalid_request`)",
    401: "No bearer token, or a wrong or revoked one (`unauthorized`; `WWW-Authenticate: Bearer`)",
    402: "The store's daily budget is spent (`budget_exhausted`): nothing was enqueued; retry after "
    "the UTC day ends or once ops raise it (`wandstore-agents budget set`)",
    403: "The token belongs to another store, or lacks the scope the route names (`forbidden`)",
    404: "No such resource, or a store nobody added (`not_found`, `unknown_store`)",
    408: "The body did not arrive within API_BODY_TIMEOUT_S (`body_timeout`)",
    409: "A conflict: a request with this Idempotency-Key is still being processed (`conflict`, with "
    "Retry-After), or the resource is not in a state that allows it",
    413: "The body is over the route's cap (`body_too_large`)",
    422: "A field breaks a rule (`invalid_request`, `invalid_input`): `details` name each field and rule",
    429: "The store's request window is spent (`rate_limited`)",
    501: "The pipeline is not deployed in this build (`not_deployed`)",
    502: "The object store failed (`store_error`)",
    503: "A dependency (Redis, the object store) is unavailable, slow or saturated; always with Retry-After",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "required": True, "schema": {"type": "string"}}},
    402: _RETRY_AFTER,
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}
# What every gated `/v1/` route may answer before its handler runs (entrypoints/api/auth.py).
GATED = (401, 403, 429, 503)
STORE_PATH = (404, 422)  # a store nobody added; a slug that could never be one
WITH_BODY = (408, 413, 422)  # BodyLimit reads every POST and PUT body within a cap and a deadline


def declare(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: each status in the error shape (`ErrorResponse`), with its headers.

    `why` overrides a description by status (`why={"404": "No such batch"}` as `s404=...`).
    """
    from entrypoints.api.schemas import ErrorResponse

    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        entry: dict[str, Any] = {"model": ErrorResponse, "description": why.get(f"s{status}", WHY[status])}
        if status in HEADERS:
            entry["headers"] = HEADERS[status]
        out[status] = entry
    return out
