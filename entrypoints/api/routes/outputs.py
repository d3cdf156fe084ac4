"""Published outputs, for clients without object-store access."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from adapters.errors import NotFound
from adapters.store.base import check_key
from domain.keys import store_prefixes
from entrypoints.api.auth import needs
from entrypoints.api.common import StorePath, bearer, ctx_of
from entrypoints.api.errors import GATED, STORE_PATH, ApiError, declare
from entrypoints.api.schemas import OutputDocument

router = APIRouter(prefix="/v1", tags=["outputs"], dependencies=[Depends(bearer)], responses=declare(*GATED))


@router.get(
    "/stores/{store}/outputs/{key:path}",
    name="get_output",
    response_model=None,
    responses={
        200: {
            "model": OutputDocument,
            "description": "The document: a pipeline's (told apart by `meta.pipeline`) or another JSON "
            "file; a theme's preview and CSS as text/html and text/css",
            "headers": {"ETag": {"schema": {"type": "string"}}},
            "content": {
                "text/html": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
            },
        },
        304: {"description": "Not modified (`If-None-Match` matched the ETag)"},
        **declare(
            *STORE_PATH, 403, 502, s403="The key is not under this store's prefixes, or another store's token"
        ),
    },
    dependencies=[needs("read", "reading outputs")],
)
async def get_output(store: StorePath, key: str, request: Request) -> Response:
    """A published output at `key`, a full key from `output_keys` (JSON, or a theme's files).

    Read on the object store's own threads: a slow store answers 503 here after
    API_STORE_TIMEOUT_S and delays nothing else.
    """
    check_key(key)
    if not key.startswith(store_prefixes(store)):
        raise ApiError(
            403,
            "forbidden",
            f"key {key[:100]!r} is not an output of store {store!r}: it must start with "
            f"'stores/{store}/' or 'themes/{store}/'",
        )
    try:
        ctx = ctx_of(request)
        obj = await ctx.pools.store.run(ctx.store.get, key)
    except NotFound:
        raise ApiError(
            404, "not_found", f"no output at {key!r} (yet): see the generation's output_keys"
        ) from None
    etag = obj.etag or ""
    if etag and request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    headers = {"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
    if etag:
        headers["ETag"] = etag
    if not obj.content_type.startswith("application/json"):
        # A theme's preview.html or CSS, served from the API's origin: never let it run anything here.
        headers["Content-Security-Policy"] = (
            "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'"
        )
    return Response(obj.body, media_type=obj.content_type, headers=headers)
