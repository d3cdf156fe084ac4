"""Theme builds: list a store's builds, activate one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from wandstore_agents.api.common import StorePath, bearer
from wandstore_agents.api.errors import ApiError

router = APIRouter(prefix="/v1", tags=["themes"], dependencies=[Depends(bearer)])
NOT_DEPLOYED = ApiError(501, "not_deployed", "theme builds are not deployed in this build")


@router.get("/stores/{store}/themes", responses={501: {"description": "Not deployed in this build"}})
def list_themes(store: StorePath) -> Any:
    """The store's theme builds, newest first, and which one is current."""
    raise NOT_DEPLOYED


@router.post(
    "/stores/{store}/themes/{build_id}/activate",
    responses={501: {"description": "Not deployed in this build"}},
)
def activate_theme(store: StorePath, build_id: str) -> Any:
    """Point `themes/{store}/current.json` at a finished build."""
    raise NOT_DEPLOYED
