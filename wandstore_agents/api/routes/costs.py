"""The costs report, the same as `wandstore-agents costs`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from wandstore_agents.api.common import StorePath, bearer
from wandstore_agents.api.errors import ApiError

router = APIRouter(prefix="/v1", tags=["costs"], dependencies=[Depends(bearer)])


@router.get("/stores/{store}/costs", responses={501: {"description": "Not deployed in this build"}})
def costs(store: StorePath, since: str | None = None, until: str | None = None, by: str | None = None) -> Any:
    """Spend, tokens and cache hits for the store between `since` and `until`, grouped `by`."""
    raise ApiError(501, "not_deployed", "the costs report is not deployed in this build")
