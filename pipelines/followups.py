"""What happens when a job ends: its final status, its batch's count and its webhook, at once."""

from __future__ import annotations

from typing import Any

from adapters.logs import get_logger
from pipelines import batches
from pipelines.delivery import enqueue_delivery
from pipelines.durable import DurableStatus, until_redis_answers

log = get_logger("pipelines.followups")

# A lost end would leave the job "running" and its batch pending for ever: wait Redis out as
# the broker's own ack does. A webhook that can't be queued within seconds is logged instead.
WEBHOOK_GIVE_UP_S = 3.0


def after_job(broker: Any, tracker: DurableStatus, job_id: str, outcome: str, **fields: Any) -> None:
    """Record `job_id`'s end (`fields`) and count it in its batch (one round trip); queue its webhook."""
    try:
        store, callback = tracker.finished(
            job_id, outcome, batch_prefix=batches.PREFIX, batch_ttl_s=batches.TTL_S, **fields
        )
        if callback and store:
            until_redis_answers(lambda: enqueue_delivery(broker, store, job_id), "webhook", WEBHOOK_GIVE_UP_S)
    except Exception as exc:
        # The job itself is finished; a lost follow-up must not fail (or retry) it.
        log.error("job_followup_failed", job_id=job_id, outcome=outcome, error=str(exc))
