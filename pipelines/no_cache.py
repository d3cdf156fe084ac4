"""`CACHES_ENABLED=false`: every request computed afresh, as `options.force_fresh` does for one.

For benchmarks (the cost replay's "caches off" run) and for debugging a suspected stale
answer. The worker then neither reads the result cache nor lets AI Gateway answer from its
cache (`cf-aig-skip-cache: true`, see `GatewayConfig.skip_cache`); what it computes is still
written, so turning the caches back on finds the freshest entries.
"""

from __future__ import annotations

from typing import Any

from pipelines.result_cache import Cached, Compute, ResultCache


class NoResultCache(ResultCache):
    """A `ResultCache` that never answers from what it holds."""

    async def get(self, pipeline: str, key: str, *, store: str) -> dict[str, Any] | None:
        return None

    async def get_or_compute(
        self,
        pipeline: str,
        key: str,
        compute: Compute,
        *,
        store: str,
        fresh: bool = False,
        ttl_s: int | None = None,
    ) -> Cached:
        return await super().get_or_compute(pipeline, key, compute, store=store, fresh=True, ttl_s=ttl_s)
