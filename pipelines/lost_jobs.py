"""Jobs whose message is gone: found, and reported `lost`, never left `queued` for ever.

Redis can lose a message while the job's status survives it: an eviction, a `FLUSHDB` or purge
by hand, a restore of an older dump, a foreign client, an enqueue that failed after the status
was written. No worker will ever run such a job. Every worker process checks (at most one of
them every `RECONCILE_EVERY_S`, pipelines/maintenance.py):

- the open jobs (`wandstore:jobs:open`) not written for `JOBS_LOST_AFTER_S`, oldest first;
- each one's current message copy, recorded at every enqueue (`JobLocations`): one `HEXISTS`;
- only for the few whose copy is gone, every body of their queues, delay queues and dead
  letters, by message id (a retry, a replay or a foreign client's enqueue has a copy elsewhere);
- what is nowhere is marked `lost` with its reason, in one script that does nothing if the job
  moved meanwhile; it counts as failed in its batch, its webhook is queued, and
  `wandstore_jobs_lost_total{pipeline}` counts it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq.common import q_name
from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from pipelines import batches
from pipelines.dramatiq_gaps import find_messages, location_of, present
from pipelines.fair import waiting_in_lane
from pipelines.metrics import observe_job_lost
from pipelines.status import JobStatus

log = get_logger("pipelines.lost_jobs")

RECONCILE_EVERY_S = 15.0  # at most one check in this long, across every worker process
BATCH_SIZE = 1000  # open jobs checked per pass (a long backlog is checked in turn)
_LOCK = "wandstore:jobs:reconcile"


class JobLocations(Middleware):
    """Record, in a job's status, which copy of its message is current (each enqueue makes one)."""

    def __init__(self) -> None:
        self._status: JobStatus | None = None

    def after_enqueue(self, broker: Any, message: Any, delay: int | None) -> None:
        where = location_of(message)
        if where is None:
            return
        status = self._status
        if status is None or status.r is not broker.client:
            status = self._status = JobStatus(broker.client)
        # A failure here is only logged (by Dramatiq): the check then finds the copy by its body.
        status.locate(message.message_id, *where)


@dataclass(frozen=True)
class Reconciled:
    """What one pass found: jobs checked, still somewhere, and newly lost."""

    checked: int = 0
    present: int = 0
    lost: tuple[str, ...] = ()


def _text(value: bytes | str | None) -> str:
    return "" if value is None else value.decode() if isinstance(value, bytes) else str(value)


def reconcile(
    broker: Any,
    *,
    lost_after_s: float,
    now: float | None = None,
    limit: int = BATCH_SIZE,
) -> Reconciled:
    """Mark `lost` each open job older than `lost_after_s` whose message is in no queue of `broker`."""
    client: redis.Redis = broker.client
    status = JobStatus(client)
    now = time.time() if now is None else now
    jobs = status.open_jobs(now - lost_after_s, limit)
    if not jobs:
        return Reconciled()
    queues = set(broker.get_declared_queues())
    pipe = client.pipeline(transaction=False)
    for job in jobs:
        pipe.hmget(f"wandstore:job:{job}", "status", "queue", "redis_queue", "redis_id", "updated_at")
    rows = pipe.execute()
    forget: list[str] = []
    located: list[tuple[str, tuple[str, str]]] = []
    suspects: dict[str, tuple[str, str, str]] = {}  # job -> (queue, seen Redis id, seen updated_at)
    for job, (state, queue, rqueue, rid, updated) in zip(jobs, rows, strict=True):
        queue_t = _text(queue)
        if _text(state) not in ("queued", "running", "retrying") or q_name(queue_t) not in queues:
            forget.append(job)  # ended, expired, or never a message of this broker (an inline run)
            continue
        suspects[job] = (queue_t, _text(rid), _text(updated))
        if rqueue and rid:
            located.append((job, (_text(rqueue), _text(rid))))
    status.forget_open(forget)
    alive: list[str] = []
    # A job waiting its turn in the fair batch lane (pipelines/fair.py) has no message on a queue yet.
    ids = list(suspects)
    for job, waiting in zip(ids, waiting_in_lane(client, ids), strict=True):
        if not waiting:
            continue
        alive.append(job)
        del suspects[job]
    located = [(job, where) for job, where in located if job in suspects]
    there = present(client, [where for _, where in located], broker.namespace)
    for (job, _), here in zip(located, there, strict=True):
        if here:
            alive.append(job)
            del suspects[job]
    found = find_messages(client, {q for q, _, _ in suspects.values()}, suspects, broker.namespace)
    for job, (rqueue, rid) in found.items():
        status.locate(job, rqueue, rid)
        alive.append(job)
    status.checked(alive)
    lost = [job for job in suspects if job not in found and _lose(broker, status, job, suspects[job], now)]
    return Reconciled(checked=len(jobs), present=len(alive), lost=tuple(lost))


def _lose(broker: Any, status: JobStatus, job: str, seen: tuple[str, str, str], now: float) -> bool:
    queue, rid, updated = seen
    age = now - float(updated) if updated else 0.0
    reason = (
        f"its message is no longer in Redis (not queued, delayed, running or dead-lettered on {queue!r}) "
        f"{age:.0f} s after its last update, so no worker will run it; submit it again"
    )
    ended = status.lost(
        job,
        seen_redis_id=rid,
        seen_updated_at=updated,
        reason=reason,
        batch_prefix=batches.PREFIX,
        batch_ttl_s=batches.TTL_S,
    )
    if ended is None:
        return False  # it moved since it was checked: not lost
    store, callback, pipeline = ended
    observe_job_lost(pipeline or "unknown")
    log.error("job_lost", job_id=job, pipeline=pipeline, store=store, queue=queue, reason=reason)
    if callback and store:
        from pipelines.delivery import enqueue_delivery

        try:
            enqueue_delivery(broker, store, job)
        except Exception as exc:  # the job is recorded lost; its webhook is best effort
            log.error("job_lost_webhook_not_queued", job_id=job, error=str(exc))
    return True


def reconcile_if_due(broker: Any, *, lost_after_s: float) -> Reconciled | None:
    """`reconcile`, unless another process did within `RECONCILE_EVERY_S` (a lock that expires)."""
    ms = int(RECONCILE_EVERY_S * 1000)
    if not broker.client.set(_LOCK, broker.broker_id, nx=True, px=ms):
        return None
    return reconcile(broker, lost_after_s=lost_after_s)


__all__ = ["RECONCILE_EVERY_S", "JobLocations", "Reconciled", "reconcile", "reconcile_if_due"]
