"""Publishing outputs to the object store with the `meta` block every reader relies on."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from adapters.store import ObjectStore, put_json
from agents.base import AgentRun
from agents.usage import Served, nano_to_usd


def input_hash(*parts: Any) -> str:
    """A stable hash of the normalized input (and whatever else decides the output)."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_meta(
    *,
    pipeline: str,
    run: AgentRun[Any],
    digest: str,
    job_id: str,
    served: Served | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prompt = run.prompt
    meta = {
        "pipeline": pipeline,
        "prompt": prompt.agent,
        "prompt_version": prompt.version,
        "prompt_ref": prompt.ref,
        "model": prompt.meta.model,
        # Which model wrote it: the prompt's fallback when its primary was down or throttled.
        "model_served": run.model_served or prompt.meta.model,
        "model_fallback": run.fallback_from is not None,
        "generated_at": now_iso(),
        "input_hash": digest,
        "cost_usd": str(nano_to_usd(run.cost_nano)),
        "served": (served or run.served).value,
        "tokens": {
            "prompt": run.usage.prompt_tokens,
            "cached_prompt": run.usage.cached_prompt_tokens,
            "completion": run.usage.completion_tokens,
        },
        "calls": len(run.records),
        "job_id": job_id,
    }
    meta.update(extra or {})
    return meta


def publish(store: ObjectStore, key: str, body: dict[str, Any], meta: dict[str, Any]) -> str:
    """Write `{**body, "meta": meta}` as JSON; returns the ETag."""
    return put_json(
        store,
        key,
        {**body, "meta": meta},
        metadata={"pipeline": str(meta["pipeline"]), "input-hash": str(meta["input_hash"])},
    )
