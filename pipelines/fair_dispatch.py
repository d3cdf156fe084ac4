"""Fair batch lane, the worker side: the dispatcher that moves pending jobs onto `batch`, and `send`.

Every batch worker process runs a dispatcher thread; each keeps the lane announced to
producers, and one at a time holds a short lease in Redis and works (the others try for the
lease every tick, so a dead holder is replaced within `FAIR_LEASE_MS`). The holder claims
moves round-robin across stores while the window has room (`pipelines/fair.py`), enqueues
each with Dramatiq's own `broker.enqueue` and confirms them.
It works on a timer (`FAIR_TICK_MS`) and at once when a batch job starts in its process, which
is when the window opens. A producer helps too: its submission claims the moves the window
allows right away, so on a quiet lane a job reaches `batch` in the call that submitted it.

With `FAIR_DISPATCH=false` the workers hold no lease and producers enqueue straight onto
`batch` (first in, first out); a worker still drains what was left pending, unthrottled.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq import Broker, Message
from dramatiq.errors import DecodeError
from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from pipelines.dramatiq_gaps import hold_only_what_runs, served_queues
from pipelines.fair import BULK, URGENT, FairQueue
from pipelines.queues import BATCH

log = get_logger("pipelines.fair_dispatch")
CLAIM_BATCH = 100  # moves per claim: one round trip, then as many enqueues
RECOVER_EVERY_S = 5.0
_moving = threading.local()  # set while a thread enqueues claimed moves (the window counts them already)


@dataclass(frozen=True)
class FairConfig:
    """The knobs (settings `FAIR_*`, docs/configuration.md)."""

    enabled: bool = True
    window: int = 128
    tick_ms: int = 50
    lease_ms: int = 2000
    stale_ms: int = 60_000
    assist: int = 8

    @classmethod
    def from_settings(cls, settings: Any) -> FairConfig:
        return cls(
            enabled=settings.fair_dispatch,
            window=settings.fair_window,
            tick_ms=settings.fair_tick_ms,
            lease_ms=settings.fair_lease_ms,
            stale_ms=settings.fair_stale_s * 1000,
        )


def move(broker: Broker, fair: FairQueue, entries: Iterable[tuple[str, bytes]]) -> int:
    """Enqueue claimed moves onto their queue and confirm them; returns how many went.

    What an error leaves unconfirmed stays claimed, and `FairQueue.recover` puts it back. A body
    that does not decode is dropped (logged); its job is then reported lost by the lost-job check.
    """
    sent: list[str] = []
    _moving.active = True
    try:
        for message_id, body in entries:
            try:
                message = Message.decode(body)
            except DecodeError as exc:
                log.error("fair_body_undecodable", message_id=message_id, error=str(exc))
            else:
                broker.enqueue(message)
            sent.append(message_id)
    finally:
        _moving.active = False
        fair.done(sent)
    return len(sent)


class Dispatcher:
    """The thread that keeps the `batch` queue fed fairly while it holds the lease."""

    def __init__(self, fair: FairQueue, broker: Broker, config: FairConfig) -> None:
        self.fair = fair
        self.broker = broker
        self.config = config
        self.holder = uuid.uuid4().hex
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fair-dispatcher", daemon=True)
        self._held = False
        self._recovered_at = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(timeout=5)
        if self._held:
            with contextlib.suppress(redis.RedisError):  # else it expires within FAIR_LEASE_MS
                self.fair.release(self.holder)

    def _run(self) -> None:
        failing = False  # log a run of failures once, not every tick
        while not self._stop.is_set():
            try:
                self.step()
                if failing:
                    log.info("fair_dispatch_recovered")
                failing = False
            except Exception as exc:  # Redis away, or anything else: the thread must go on
                self._held = False
                if not failing:
                    log.warning("fair_dispatch_failing", error=f"{type(exc).__name__}: {exc}")
                failing = True
            self.wake.wait(self.config.tick_ms / 1000)
            self.wake.clear()

    def step(self) -> int:
        """Hold the lease (when there is work for it) and move what the window allows."""
        config = self.config
        if not config.enabled and not self.fair.has_pending():
            if self._held:  # drained: producers enqueue directly again
                self.fair.release(self.holder)
                self._held = False
            return 0
        window = config.window if config.enabled else 0
        self._held = self.fair.hold(self.holder, window, config.lease_ms)
        if not self._held:
            return 0
        now = time.monotonic()
        if now - self._recovered_at > RECOVER_EVERY_S:
            self._recovered_at = now
            if recovered := self.fair.recover():
                log.warning("fair_moves_recovered", count=recovered)
        moved = 0
        while not self._stop.is_set():
            entries = self.fair.claim(window, CLAIM_BATCH)
            moved += move(self.broker, self.fair, entries)
            if len(entries) < CLAIM_BATCH:
                break
        return moved


def _serves_batch(worker: Any) -> bool:
    queues = served_queues(worker)
    return queues is None or BATCH in queues


class FairDispatch(Middleware):
    """Runs the dispatcher in batch workers and keeps the window's count (see module doc)."""

    def __init__(self, client: redis.Redis, config: FairConfig) -> None:
        self.config = config
        self.fair = FairQueue(client, stale_ms=config.stale_ms)
        self.dispatcher: Dispatcher | None = None

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        if _serves_batch(worker):
            # A process holds no more jobs than it runs: the window's jobs go to idle threads,
            # whichever process they are in, not to the first one to fetch (dramatiq_gaps, 10).
            hold_only_what_runs(worker)

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if not _serves_batch(worker):
            return
        self.dispatcher = Dispatcher(self.fair, broker, self.config)
        self.dispatcher.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None

    def before_process_message(self, broker: Any, message: Any) -> None:
        if message.queue_name != BATCH or not self.config.enabled:
            return
        try:
            self.fair.started(message.message_id)
        except redis.RedisError as exc:  # the entry ages out after FAIR_STALE_S
            log.warning("fair_start_unrecorded", error=str(exc))
        if self.dispatcher is not None:
            self.dispatcher.wake.set()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self.before_process_message(broker, message)

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        # Retries coming back from the delay queue, and direct enqueues, take window room too.
        if message.queue_name != BATCH or not self.config.enabled or getattr(_moving, "active", False):
            return
        try:
            self.fair.queued(message.message_id)
        except redis.RedisError as exc:
            log.warning("fair_enqueue_uncounted", error=str(exc))


def fair_of(broker: Broker) -> FairDispatch | None:
    """The broker's `FairDispatch` middleware (None for a plain broker: it enqueues directly)."""
    for middleware in getattr(broker, "middleware", ()):
        if isinstance(middleware, FairDispatch):
            return middleware
    return None


def send(broker: Broker, store: str, messages: list[Message[Any]], *, bulk: bool = False) -> None:
    """Enqueue one store's messages: batch-lane ones through the fair lane while a dispatcher runs.

    `bulk` (a catalog batch's jobs) puts them behind the store's single requests. Many
    messages cost one round trip, plus the moves the window allows at once.
    """
    fair = fair_of(broker)
    lane = [m for m in messages if m.queue_name == BATCH] if fair is not None else []
    moves = None
    if fair is not None and lane:
        pairs = [(m.message_id, m.encode()) for m in lane]
        moves = fair.fair.submit(store, BULK if bulk else URGENT, pairs, assist=fair.config.assist)
    for message in messages:
        if moves is None or message.queue_name != BATCH:
            broker.enqueue(message)
    if moves and fair is not None:
        move(broker, fair.fair, moves)


__all__ = ["Dispatcher", "FairConfig", "FairDispatch", "fair_of", "move", "send"]
