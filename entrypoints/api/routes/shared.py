"""Share links: a theme preview opened in a browser with a signed, expiring link instead of a token.

Outside `/v1/` on purpose: the token gate never sees these paths; the signature is the
credential (`adapters/share_links.py`). A wrong, altered or expired link is a 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from adapters.errors import NotFound
from adapters.share_links import ShareLinkError, astored_secret, split_secrets, verify
from domain.keys import BUILD_RE, STORE_RE, theme_build_prefix
from domain.themes.images import IMG_SOURCES
from entrypoints.api.common import ctx_of
from entrypoints.api.context import ApiContext
from entrypoints.api.errors import ApiError, declare

router = APIRouter(tags=["themes"])
# The preview's own meta policy, again as a header, plus a sandbox and no framing: nothing runs,
# nothing is fetched but Shopify's product images, and the signed URL is never sent as a referrer.
CSP = (
    f"sandbox; default-src 'none'; img-src {IMG_SOURCES}; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


async def share_secrets(ctx: ApiContext) -> list[str]:
    """The configured secrets, else the one kept in Redis."""
    configured = ctx.settings.share_link_secret
    listed = split_secrets(configured.get_secret_value() if configured else None)
    return listed or [await astored_secret(ctx.aredis)]


@router.get(
    "/share/themes/{store}/{build_id}",
    name="shared_theme_preview",
    response_class=Response,
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The build's preview.html",
        },
        **declare(
            403,
            404,
            422,
            502,
            503,
            s403="The link is malformed, altered or expired",
            s404="The build is gone",
        ),
    },
)
async def shared_theme_preview(
    store: str,
    build_id: str,
    request: Request,
    expires: str | None = Query(default=None, max_length=12),
    sig: str | None = Query(default=None, max_length=100),
) -> Response:
    """A theme build's preview, for whoever holds a share link the API signed and that has not expired."""
    if not STORE_RE.fullmatch(store) or not BUILD_RE.fullmatch(build_id):
        raise ApiError(403, "forbidden", "not a share link this service made")
    ctx = ctx_of(request)
    try:
        verify(await share_secrets(ctx), store, build_id, expires, sig)
    except ShareLinkError as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    key = theme_build_prefix(store, build_id) + "preview.html"
    try:
        obj = await ctx.pools.store.run(ctx.store.get, key)
    except NotFound:
        raise ApiError(404, "not_found", f"theme build {build_id!r} of store {store!r} is gone") from None
    headers = {
        "Content-Security-Policy": CSP,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Robots-Tag": "noindex, nofollow",
    }
    return Response(obj.body, media_type="text/html; charset=utf-8", headers=headers)
