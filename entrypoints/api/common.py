"""Helpers shared by the routes: the context, path parameters, JSON bodies, idempotent POSTs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, RootModel, ValidationError

from adapters.ledger import Ledger
from domain.keys import STORE_RE
from entrypoints.api import jsonchunks
from entrypoints.api.context import ApiContext
from entrypoints.api.errors import budget_spent
from entrypoints.api.idempotency import fingerprint
from entrypoints.api.schemas import UUID_PATTERN
from pipelines.budget_gate import spent_budget

M = TypeVar("M", bound=BaseModel)

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
# Bodies larger than this are parsed and fingerprinted on the parse threads, not the event loop
# (4 MB bodies parsed on the loop pushed other requests from p50 3.7 ms to 180 ms).
INLINE_PARSE_BYTES = 64 * 1024


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The bodies routes read themselves (`read_body`), by name: entrypoints/api/openapi.py adds them
# to the document's components, where their `$ref`s point.
BODY_SCHEMAS: dict[str, dict[str, Any]] = {}


def json_body(model: type[BaseModel], cap: str) -> dict[str, Any]:
    """A route's `openapi_extra`: its JSON body (read with `read_body`) and its size cap's name."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    BODY_SCHEMAS.update(schema.pop("$defs", {}))
    BODY_SCHEMAS[model.__name__] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        },
        "x-body-cap": cap,
    }


class Body(Generic[M]):
    """A request body as its model, with its size (to decide what may run on the event loop)."""

    def __init__(self, model: M, size: int) -> None:
        self.model = model
        self.size = size

    @property
    def large(self) -> bool:
        return self.size > INLINE_PARSE_BYTES


_TOO_DEEP = {
    "type": "json_invalid",
    "loc": ("body",),
    "msg": "JSON nested too deeply",
    "ctx": {"error": "nesting"},
}


def _parse(raw: bytes, model: type[M], chunked: bool) -> M:
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    try:
        data = jsonchunks.loads(raw) if chunked else json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where, why = (exc.pos, exc.msg) if isinstance(exc, json.JSONDecodeError) else (exc.start, exc.reason)
        error = {
            "type": "json_invalid",
            "loc": ("body", where),
            "msg": "JSON decode error",
            "ctx": {"error": why},
        }
        raise RequestValidationError([error]) from None
    except RecursionError:
        raise RequestValidationError([_TOO_DEEP]) from None
    try:
        return model.model_validate(data)
    except RecursionError:
        raise RequestValidationError([_TOO_DEEP]) from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        untag = getattr(model, "untag", None)  # a union by `pipeline` names fields as one model would
        errors = untag(errors) if untag else errors
        raise RequestValidationError(
            [{**err, "loc": ("body", *err.get("loc", ()))} for err in errors]
        ) from None


async def read_body(request: Request, model: type[M]) -> Body[M]:
    """Parse and validate the JSON body; a large one on the parse threads, in pieces (jsonchunks)."""
    raw = await request.body()  # already read, within its cap, by BodyLimit
    if len(raw) <= INLINE_PARSE_BYTES:
        return Body(_parse(raw, model, chunked=False), len(raw))
    return Body(await ctx_of(request).pools.parse.run(_parse, raw, model, True), len(raw))


def body_fingerprint(model: BaseModel) -> str:
    """The Idempotency-Key fingerprint of a request body: its model's fields as canonical JSON."""
    # The fields as they are, not model_dump()'s copy (for 4 MB, ~25 ms holding the GIL); the
    # canonical text is the same, since default=str renders a URL as model_dump(mode="json") does.
    if isinstance(model, RootModel):
        model = model.root
    # A nested model (a pipeline's typed `input`) is small: dumped as model_dump(mode="json") would.
    fields = {name: getattr(model, name) for name in type(model).model_fields}
    return fingerprint(
        {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in fields.items()}
    )


async def idempotent(
    ctx: ApiContext,
    scope: str,
    key: str | None,
    body: Body[Any],
    work: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> JSONResponse:
    """Run `work` once per Idempotency-Key; a retry gets the stored answer back."""
    if key is None:
        status, answer = await work()
        return JSONResponse(answer, status_code=status)

    # Computed only when a key is given; a large body's on the parse threads.
    model = body.model
    digest = await ctx.pools.parse.run(body_fingerprint, model) if body.large else body_fingerprint(model)
    claim = ctx.idempotency
    held = await claim.begin(scope, key, digest)
    if isinstance(held, dict):
        return JSONResponse(
            held["response"], status_code=int(held["status"]), headers={"Idempotent-Replayed": "true"}
        )

    async def claimed() -> tuple[int, dict[str, Any]]:
        async with claim.renewing(held):
            try:
                status, answer = await work()
            except BaseException:
                await claim.release(held)
                raise
        await claim.finish(held, status, answer)
        return status, answer

    # Shielded: should the request be cancelled, the work still ends by storing or releasing its claim.
    task = asyncio.ensure_future(claimed())
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    status, answer = await asyncio.shield(task)
    return JSONResponse(answer, status_code=status)


async def refuse_if_budget_spent(ctx: ApiContext, store: str) -> None:
    """`budget_spent` (402) for a store whose daily budget is spent: its jobs could only fail."""
    spent = await ctx.pools.redis.run(spent_budget, Ledger(ctx.redis), store, ctx.settings.daily_budget_usd)
    if spent is not None:
        raise budget_spent(spent)
