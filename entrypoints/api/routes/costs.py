"""The costs report, the same as `wandstore-agents costs` (adapters.costs.cost_report)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from adapters.costs import GROUP_KEYS, cost_report, parse_by, parse_day
from adapters.errors import InvalidInput
from adapters.ledger import Ledger
from entrypoints.api.auth import needs
from entrypoints.api.common import StorePath, bearer, ctx_of
from entrypoints.api.errors import GATED, STORE_PATH, declare, invalid_field
from entrypoints.api.schemas import CostReport

router = APIRouter(prefix="/v1", tags=["costs"], dependencies=[Depends(bearer)], responses=declare(*GATED))
DAY = r"^\d{4}-\d{2}-\d{2}$"


@router.get(
    "/stores/{store}/costs",
    response_model=CostReport,
    operation_id="getCosts",
    responses=declare(*STORE_PATH),
    dependencies=[needs("read", "reading costs")],
)
async def costs(
    store: StorePath,
    request: Request,
    since: Annotated[str | None, Query(pattern=DAY, description="First UTC day, YYYY-MM-DD")] = None,
    until: Annotated[
        str | None, Query(pattern=DAY, description="Last UTC day, YYYY-MM-DD (default: today)")
    ] = None,
    by: Annotated[
        str | None, Query(description=f"Comma-separated grouping keys: {', '.join(GROUP_KEYS)}")
    ] = "pipeline,agent,model,prompt",
) -> Any:
    """Tokens, cost and cache hits of the store between `since` and `until`, grouped `by`."""
    parsed: dict[str, Any] = {}
    for name, parse in (
        ("since", lambda: parse_day(since, "since")),
        ("until", lambda: parse_day(until, "until")),
        ("by", lambda: parse_by(by)),
    ):
        try:
            parsed[name] = parse()
        except InvalidInput as exc:
            raise invalid_field(name, str(exc)) from None
    ctx = ctx_of(request)
    try:
        report = await ctx.pools.redis.run(lambda: cost_report(Ledger(ctx.redis), store=store, **parsed))
    except InvalidInput as exc:
        raise invalid_field("since", str(exc).replace("--", "")) from None
    return {"store": store, "since": since, "until": until, "by": list(parsed["by"]), **report}
