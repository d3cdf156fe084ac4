"""What happens after a job finishes: its batch counts it, its webhook is queued."""

from __future__ import annotations

from typing import Any

import redis

from pipelines.batches import record_outcome
from pipelines.status import PREFIX
from pipelines.webhooks import enqueue_delivery
from wandstore_agents.logs import get_logger

log = get_logger("pipelines.followups")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def after_job(broker: Any, job_id: str, outcome: str) -> None:
    """Count `job_id` in its batch and queue its webhook, if it has them (one Redis read otherwise)."""
    client: redis.Redis = broker.client
    try:
        store, batch, callback = client.hmget(PREFIX + job_id, "store", "batch", "callback_url")
        if batch:
            record_outcome(client, _text(batch), job_id, outcome)
        if callback and store:
            enqueue_delivery(broker, _text(store), job_id)
    except redis.RedisError as exc:
        # The job itself is finished and recorded; losing a follow-up must not fail it.
        log.error("job_followup_failed", job_id=job_id, error=str(exc))
