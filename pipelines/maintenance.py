"""Broker maintenance on a timer in every worker process: a dead worker's jobs back within seconds.

Dramatiq's Redis broker puts a dead worker's claimed messages back only in maintenance, which it
runs on a random 1 in `maintenance_chance` commands; measured at its defaults (60 s heartbeat, 1
in 1,000), 7 of 12 jobs of a SIGKILLed worker were still stranded 300 s later on a quiet fleet.
Here each worker process runs it itself, every `BROKER_MAINTENANCE_INTERVAL_MS`, on every queue
it declares (and at once when it starts, a sweep of what earlier crashes left). Each pass:

- is this process's heartbeat (so a process whose threads are all busy in long model calls is
  still alive to the others: it heartbeats once per interval, the timeout is several intervals);
- requeues what workers silent for `BROKER_HEARTBEAT_TIMEOUT_MS` had claimed;
- lets one process of the fleet look for jobs whose message is gone (pipelines/lost_jobs.py);
- once an hour, lets one process of the fleet remove old decided drafts, on a thread of its own
  (pipelines/drafts_retention.py).

After Redis was out of reach for longer than the heartbeat timeout, every worker's heartbeat is
stale, not only dead ones': the pass then only heartbeats for one timeout, so live workers speak
up before anyone is judged dead (else each would redo the others' running jobs).

Decision record: docs/decisions/0019-broker-maintenance-on-a-timer.md.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from pipelines import services
from pipelines.drafts_retention import claim, prune_logged
from pipelines.dramatiq_gaps import claimed_by, dead_workers, maintain
from pipelines.lanes import keep_in_place
from pipelines.lost_jobs import reconcile_if_due

log = get_logger("pipelines.maintenance")


class Maintainer:
    """One process's maintenance passes over `broker`'s queues (a thread calls `tick`)."""

    def __init__(self, broker: Any, *, lost_after_s: float | None, draft_retention_days: float = 0.0) -> None:
        self.broker = broker
        self.lost_after_s = lost_after_s
        self.draft_retention_days = draft_retention_days
        self._pruning: threading.Thread | None = None
        self.timeout_s = broker.heartbeat_timeout / 1000
        self._last_ok = time.monotonic()
        self._quiet_until = 0.0

    def queues(self) -> set[str]:
        return set(self.broker.get_declared_queues()) | set(self.broker.get_declared_delay_queues())

    def tick(self) -> None:
        """Heartbeat; requeue dead workers' messages (unless just back from an outage); look for lost jobs."""
        now = time.monotonic()
        if now - self._last_ok > self.timeout_s:
            # Nobody could heartbeat while Redis was away (or this process was stopped): give live
            # workers one timeout to speak up before judging anyone dead.
            self._quiet_until = now + self.timeout_s
            log.warning("broker_maintenance_paused", seconds=round(self.timeout_s, 1), reason="no heartbeat")
        queues = self.queues()
        if now < self._quiet_until:
            maintain(self.broker, queues, requeue_dead=False)
        else:
            dead = dead_workers(self.broker)
            held = claimed_by(self.broker, dead, queues) if dead else 0
            maintain(self.broker, queues)
            if held:
                log.warning("dead_worker_messages_requeued", workers=len(dead), messages=held)
        self._last_ok = now
        if self.lost_after_s is not None and now >= self._quiet_until:
            found = reconcile_if_due(self.broker, lost_after_s=self.lost_after_s)
            if found is not None and found.lost:
                log.warning("jobs_lost", count=len(found.lost), checked=found.checked)
        if self.draft_retention_days > 0 and now >= self._quiet_until:
            self.prune_drafts()

    def prune_drafts(self) -> threading.Thread | None:
        """Start this turn's drafts pruning on a thread of its own, if it is this process's turn."""
        svc = services.built()
        if svc is None or (self._pruning is not None and self._pruning.is_alive()):
            return None
        if not claim(svc.redis):
            return None
        self._pruning = threading.Thread(
            target=prune_logged,
            args=(svc.redis, svc.store),
            kwargs={"retention_days": self.draft_retention_days},
            name="drafts-prune",
            daemon=True,
        )
        self._pruning.start()
        return self._pruning


class BrokerMaintenance(Middleware):
    """Run a `Maintainer` every `interval_ms` in a daemon thread, from worker boot to shutdown."""

    def __init__(
        self, interval_ms: int, *, lost_after_s: float | None = None, draft_retention_days: float = 0.0
    ) -> None:
        self.interval_s = interval_ms / 1000
        self.lost_after_s = lost_after_s
        self.draft_retention_days = draft_retention_days
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        # Before boot: started by a thread of normal priority and kept there, so a batch worker's
        # SCHED_IDLE placement (pipelines/lanes.py, after boot) never starves its heartbeat.
        if self._thread is not None:
            return
        self._stop.clear()
        maintainer = Maintainer(
            broker, lost_after_s=self.lost_after_s, draft_retention_days=self.draft_retention_days
        )
        self._thread = threading.Thread(
            target=self._run, args=(maintainer,), name="broker-maintenance", daemon=True
        )
        self._thread.start()
        keep_in_place(self._thread.native_id)

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self.interval_s + 5)

    def _run(self, maintainer: Maintainer) -> None:
        # The first pass at once: the sweep of a starting worker.
        while True:
            try:
                maintainer.tick()
            except Exception as exc:  # never let the heartbeat thread die; Redis may be back next time
                log.warning("broker_maintenance_failed", error=f"{type(exc).__name__}: {exc}")
            if self._stop.wait(self.interval_s):
                return


__all__ = ["BrokerMaintenance", "Maintainer"]
