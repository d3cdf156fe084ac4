"""Theme builds: list a store's published builds, activate one (rollback or roll forward)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from adapters.errors import InvalidInput
from domain.keys import BUILD_RE
from entrypoints.api.auth import needs
from entrypoints.api.common import StorePath, bearer, ctx_of
from entrypoints.api.errors import ApiError
from entrypoints.api.schemas import ThemeBuilds, ThemePointer

router = APIRouter(prefix="/v1", tags=["themes"], dependencies=[Depends(bearer)])
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
    responses={404: {"description": "No published build with that id"}},
    dependencies=[needs("publish", "activating a theme")],
)
async def activate_theme(store: StorePath, build_id: BuildPath, request: Request) -> Any:
    """Point `themes/{store}/current.json` at a published build (compare-and-swap). Needs scope `publish`."""
    from pipelines.theme_publish import activate

    ctx = ctx_of(request)
    try:
        return await ctx.pools.store.run(
            lambda: activate(ctx.store, store, build_id, reason="api"), abandon=False
        )
    except InvalidInput as exc:
        raise ApiError(404, "not_found", str(exc)) from None
