"""Theme builds: list a store's published builds, activate one (rollback or roll forward), share one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from adapters.errors import InvalidInput
from domain.keys import BUILD_RE
from entrypoints.api.auth import needs, principal_of
from entrypoints.api.common import StorePath, bearer, ctx_of, iso
from entrypoints.api.errors import GATED, STORE_PATH, WITH_BODY, ApiError, declare
from entrypoints.api.routes.shared import share_secrets
from entrypoints.api.schemas import ThemeBuilds, ThemePointer, ThemeShare

# Every route reads the object store (502, or 503 when it is slow or failing).
router = APIRouter(
    prefix="/v1", tags=["themes"], dependencies=[Depends(bearer)], responses=declare(*GATED, *STORE_PATH, 502)
)
BuildPath = Annotated[str, Path(pattern=BUILD_RE.pattern, description="A build id from the themes list")]


@router.get(
    "/stores/{store}/themes", response_model=ThemeBuilds, dependencies=[needs("read", "listing themes")]
)
async def list_themes(store: StorePath, request: Request) -> Any:
    """The store's published builds, newest first; `current` marks what the storefront serves."""
    from pipelines.theme_publish import list_builds

    ctx = ctx_of(request)
    builds = await ctx.pools.store.run(list_builds, ctx.store, store)
    for build in builds:
        build["preview_url"] = str(request.url_for("get_output", store=store, key=build["preview"]))
    return {"store": store, "builds": builds}


@router.post(
    "/stores/{store}/themes/{build_id}/activate",
    response_model=ThemePointer,
    responses=declare(
        *WITH_BODY,
        404,
        409,
        s404="No published build with that id",
        s409="The build's draft is pending or rejected (`draft_not_approved`): approve it first",
    ),
    dependencies=[needs("publish", "activating a theme")],
)
async def activate_theme(store: StorePath, build_id: BuildPath, request: Request) -> Any:
    """Point `themes/{store}/current.json` at a published build (compare-and-swap). Needs scope `publish`."""
    from entrypoints.api.routes.drafts import decider
    from pipelines.drafts import DraftConflict
    from pipelines.drafts_review import activate_reviewed

    ctx = ctx_of(request)
    by = decider(principal_of(request))
    try:
        return await ctx.pools.store.run(
            lambda: activate_reviewed(ctx.redis, ctx.store, store, build_id, by=by, reason="api"),
            abandon=False,
        )
    except InvalidInput as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except DraftConflict as exc:  # waiting for review: approve its draft instead
        raise ApiError(409, "draft_not_approved", str(exc)) from None


@router.post(
    "/stores/{store}/themes/{build_id}/share",
    response_model=ThemeShare,
    responses=declare(*WITH_BODY, 404, s404="No published build with that id"),
    dependencies=[needs("publish", "sharing a theme preview")],
)
async def share_theme(
    store: StorePath,
    build_id: BuildPath,
    request: Request,
    expires_in_s: Annotated[
        int | None, Query(ge=60, description="How long the link works (default SHARE_LINK_TTL_S)")
    ] = None,
) -> Any:
    """A signed link that opens the build's preview in a browser without a token, until it expires.

    Needs scope `publish`: the link reaches anyone it is sent to, for as long as it lasts, and
    revoking the token that made it does not revoke it (changing the secret does).
    """
    from adapters.share_links import sign
    from domain.keys import theme_build_prefix

    ctx = ctx_of(request)
    settings = ctx.settings
    ttl = expires_in_s or settings.share_link_ttl_s
    if ttl > settings.share_link_max_ttl_s:
        raise ApiError(
            422,
            "invalid_request",
            f"expires_in_s: {ttl} is longer than SHARE_LINK_MAX_TTL_S ({settings.share_link_max_ttl_s})",
        )
    key = theme_build_prefix(store, build_id) + "preview.html"
    if not await ctx.pools.store.run(ctx.store.exists, key):
        raise ApiError(404, "not_found", f"theme build {build_id!r} of store {store!r} is not published")
    expires, sig = sign(await share_secrets(ctx), store, build_id, ttl)
    url = request.url_for("shared_theme_preview", store=store, build_id=build_id)
    return {
        "url": str(url.include_query_params(expires=expires, sig=sig)),
        "expires_at": iso(expires),
        "build_id": build_id,
        "store": store,
    }
