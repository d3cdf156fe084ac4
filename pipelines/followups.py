"""What happens after a job finishes: its batch counts it, its webhook is queued."""

from __future__ import annotations

import time
from typing import Any

import redis

from pipelines.batches import record_outcome
from pipelines.status import PREFIX
from pipelines.webhooks import enqueue_delivery
from wandstore_agents.logs import get_logger

log = get_logger("pipelines.followups")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


RETRY_DELAYS_S = (0.1, 0.2, 0.4, 0.8, 1.6)


def after_job(broker: Any, job_id: str, outcome: str) -> None:
    """Count `job_id` in its batch and queue its webhook, if it has them (one Redis read otherwise).

    A Redis blip is waited out for a few seconds: a lost follow-up would leave the batch
    pending for ever, or the callback never sent.
    """
    client: redis.Redis = broker.client
    counted = queued = False
    for delay in (*RETRY_DELAYS_S, None):
        try:
            store, batch, callback = client.hmget(PREFIX + job_id, "store", "batch", "callback_url")
            if batch and not counted:
                record_outcome(client, _text(batch), job_id, outcome)  # idempotent (a set)
                counted = True
            if callback and store and not queued:
                enqueue_delivery(broker, _text(store), job_id)
                queued = True
            return
        except redis.RedisError as exc:
            if delay is None:
                # The job itself is finished and recorded; a lost follow-up must not fail it.
                log.error("job_followup_failed", job_id=job_id, outcome=outcome, error=str(exc))
                return
            time.sleep(delay)
