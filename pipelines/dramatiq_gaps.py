"""What Dramatiq 2.2.1 lacks for this service, filled in with its internals: the one module that touches them.

Everything else extends Dramatiq through what it documents (middleware, actor options,
`RedisBroker.consume`, the `Consumer` interface, `dramatiq.set_encoder`). Dramatiq is pinned in
pyproject.toml, and tests/unit/test_dramatiq_pin.py fails when the installed version differs:
before moving the pin, check each gap below against the new version's `brokers/redis.py`,
`brokers/redis/dispatch.lua`, `worker.py`, `middleware/retries.py` and `cli.py`, and drop the
ones it has closed.

1. **Undecodable messages** (Bogdanp/dramatiq#375, #284). The Redis consumer decodes a
   fetched message in its consumer thread; a body that does not decode raises there, the
   thread rebuilds its consumer, and the bad message, with the rest of its prefetched batch,
   stays claimed by this worker until the worker dies, then poisons the next one.
   `GuardedConsumer` catches the `DecodeError`, finds the body among this worker's claims
   (Dramatiq's `__acks__` set) and nacks it to the dead-letter queue with its reason.
   (pipelines/dead_letters.MessageEncoder makes wrong field types a `DecodeError` too.)
2. **Delayed messages after a lost connection** (Bogdanp/dramatiq#527). On a connection
   error the consumer thread drops the delayed messages it held in memory (retries waiting
   for their time) while Redis still lists them as claimed by this live worker: nobody runs
   them until the worker restarts. A new consumer of a delay queue puts back what this
   worker claims there (its consumer thread holds nothing in memory when it builds one).
3. **Redis errors that end the consumer thread** (Bogdanp/dramatiq#894). `redis.TimeoutError`
   is not a `ConnectionError`, and `requeue` translates neither: one of them while a consumer
   hands a delayed message on escaped the thread's error handling and ended it (the worker
   silently stopped running retries). `GuardedConsumer` raises Dramatiq's `ConnectionClosed`,
   which the thread survives.
4. **A retry enqueued while Redis is down is lost** (Bogdanp/dramatiq#545). `Retries`
   enqueues the retry in an after-hook, whose failure Dramatiq only logs; the message is then
   acked. `DurableRetries` hands `Retries` a broker whose `enqueue` waits for Redis.
5. **A repeated stop signal kills a stopping worker.** The `dramatiq` CLI's worker-process
   handler reads a second SIGTERM as "kill now" (`sys.exit` mid-shutdown); `StopOnce` wraps
   that handler so a repeat within `REPEAT_WINDOW_S` is ignored.
6. **The Redis broker's key layout** (`dispatch.lua`): Dramatiq has no API to list, replay
   or purge dead letters, or to count a queue. `DeadLetterStore` and `queue_depth` read and
   write those keys; nothing else does.
7. **The exception a message failed with**: `after_nack` hooks get only the message, whose
   exception Dramatiq keeps in `MessageProxy._exception` (`exception_of`).
8. **Maintenance on demand** (Bogdanp/dramatiq#401, #692). The Redis broker puts a dead worker's
   claimed messages back only in "maintenance", which `dispatch.lua` runs on a random 1 in
   `maintenance_chance` commands, for the one queue the command names: a quiet fleet left a
   killed worker's jobs stranded for minutes. A worker's heartbeat is any of its broker
   commands, so one whose threads are all busy for longer than the timeout (#692) can be
   taken for dead while it runs. `maintain` runs the broker's own dispatch script
   with its maintenance flag set, once per queue, under a command the script does not know
   (so it does nothing else); every call is also this worker's heartbeat
   (pipelines/maintenance.py calls it on a timer).
9. **Where a message is.** Dramatiq gives each enqueued copy of a message a Redis id of its
   own (`options["redis_message_id"]`, new at every retry and delay hop) and keeps its body in
   `{ns}:{queue}.msgs` until it is acked or dead-lettered. `location_of`, `present` and
   `find_messages` read that (pipelines/lost_jobs.py: a job whose message is gone is lost).
10. **Prefetch per process.** A worker's consumers hold up to twice its threads in messages
   (`dramatiq_queue_prefetch`, an environment variable read once when `dramatiq.worker` is
   imported, before the CLI loads this service). For batch jobs of seconds the extra half is
   harmful: the first process to fetch takes every job the fair lane let onto `batch` while
   its sibling's threads sit idle, and a newcomer's job waits behind them. `hold_only_what_runs`
   sets the worker's `queue_prefetch` to its thread count before its consumers start, unless
   `dramatiq_queue_prefetch` is set (bench/fairness: the fair lane cost store A's catalog 18-24%
   of its rate before, +1% to -19% over three runs after; decision 0021).
11. **Which queues a worker serves.** Dramatiq keeps the CLI's `--queues` in
   `Worker.consumer_whitelist`, which it does not document; `served_queues` reads it for the
   batch lane's CPU placement (pipelines/lanes.py) and the fair dispatcher
   (pipelines/fair_dispatch.py).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import ConnectionClosed, DecodeError
from dramatiq.middleware import Middleware, Retries
from dramatiq.worker import QUEUE_PREFETCH

from adapters.logs import get_logger
from pipelines.durable import until_redis_answers

log = get_logger("pipelines.dramatiq_gaps")

# The Dramatiq version whose internals this module was written against (and the pin's).
DRAMATIQ_VERSION = "2.2.1"


@dataclass(frozen=True)
class Layout:
    """Key names of Dramatiq's Redis broker (gap 6; see the header of `brokers/redis/dispatch.lua`)."""

    namespace: str = "dramatiq"

    def queue(self, queue: str) -> str:
        return f"{self.namespace}:{queue}"

    def messages(self, queue: str) -> str:
        return f"{self.namespace}:{queue}.msgs"

    def dead(self, queue: str) -> str:
        return f"{self.namespace}:{q_name(queue)}.XQ"

    def dead_messages(self, queue: str) -> str:
        return self.dead(queue) + ".msgs"

    def claims(self, broker_id: str, queue: str) -> str:
        return f"{self.namespace}:__acks__.{broker_id}.{queue}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@contextmanager
def _connection_errors() -> Iterator[None]:
    """Redis errors as Dramatiq's `ConnectionClosed`, which its consumer thread survives (gap 3)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise ConnectionClosed(exc) from None


OnUndecodable = Callable[[redis.Redis, str, str, str], None]


class GuardedConsumer(Consumer):
    """The Redis broker's own consumer, with gaps 1 to 3 filled."""

    def __init__(
        self, broker: RedisBroker, queue_name: str, inner: Consumer, on_undecodable: OnUndecodable
    ) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self.inner = inner
        self.on_undecodable = on_undecodable
        self._layout = Layout(broker.namespace)
        if queue_name.endswith(".DQ"):
            self._recover_delayed()

    def _claims(self) -> str:
        return self._layout.claims(self.broker.broker_id, self.queue_name)

    def _recover_delayed(self) -> None:
        # Gap 2. Dramatiq runs one consumer thread per queue per worker (one worker per broker),
        # and that thread builds a consumer at start (nothing claimed yet) and again after an
        # error, having emptied its delay queue: whatever is claimed here now is held by nobody.
        with _connection_errors():
            orphans = sorted(_text(i) for i in self.broker.client.smembers(self._claims()))
            if orphans:
                self.broker.do_requeue(self.queue_name, *orphans)
                log.warning("delayed_messages_recovered", queue=self.queue_name, count=len(orphans))

    def __next__(self) -> MessageProxy | None:
        while True:
            try:
                with _connection_errors():
                    return next(self.inner)
            except DecodeError as exc:
                # The inner consumer popped the bad body from its cache and kept the rest.
                self._dead_letter(exc.data, str(exc.error))

    def _dead_letter(self, data: bytes, problem: str) -> None:
        """Find the bad body among this consumer's claims and nack it to the dead-letter queue (gap 1)."""
        client = self.broker.client
        with _connection_errors():
            ids = sorted(client.smembers(self._claims()))
            bodies = client.hmget(self._layout.messages(self.queue_name), ids) if ids else []
            for rid, body in zip(ids, bodies, strict=True):
                if body == data:
                    redis_id = _text(rid)
                    self.broker.do_nack(self.queue_name, redis_id)
                    self.on_undecodable(client, self.queue_name, redis_id, f"undecodable message: {problem}")
                    log.error(
                        "message_dead_lettered", queue=self.queue_name, redis_id=redis_id, reason=problem
                    )
                    return
        log.error("message_undecodable_unclaimed", queue=self.queue_name, reason=problem)

    def ack(self, message: MessageProxy) -> None:
        with _connection_errors():
            self.inner.ack(message)

    def nack(self, message: MessageProxy) -> None:
        with _connection_errors():
            self.inner.nack(message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        with _connection_errors():
            self.inner.requeue(messages)

    def close(self) -> None:
        self.inner.close()


class _PatientBroker:
    """The broker, except that `enqueue` waits for Redis (gap 4)."""

    def __init__(self, broker: Any) -> None:
        self._broker = broker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        return until_redis_answers(lambda: self._broker.enqueue(message, delay=delay), "retry enqueue")


class DurableRetries(Retries):
    """Dramatiq's `Retries`, whose retry is enqueued once Redis answers rather than dropped (gap 4)."""

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        super().after_process_message(_PatientBroker(broker), message, result=result, exception=exception)


def exception_of(message: Any) -> BaseException | None:
    """The exception `message` was failed with, in an `after_nack` hook (gap 7)."""
    return getattr(message, "_exception", None)


# Move one dead letter back onto its queue as Dramatiq's enqueue lays it out, at most once
# however many replays race. KEYS: dead set, dead bodies, queue list, queue bodies.
_REPLAY = """
if redis.call('zrem', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('hdel', KEYS[2], ARGV[1])
redis.call('hset', KEYS[4], ARGV[2], ARGV[3])
redis.call('rpush', KEYS[3], ARGV[2])
return 1
"""


class DeadLetterStore:
    """Dramatiq's dead-letter queues in Redis, read, replayed and purged (gap 6).

    A queue's dead letters are `{ns}:{queue}.XQ` (Redis message ids scored by when they died,
    in ms) and `{ns}:{queue}.XQ.msgs` (id -> encoded message); Dramatiq drops them after 7 days.
    """

    def __init__(self, client: redis.Redis, namespace: str = "dramatiq") -> None:
        self.r = client
        self.layout = Layout(namespace)
        self._replay = client.register_script(_REPLAY)

    def queues(self) -> list[str]:
        """Every queue that has dead letters."""
        ns = self.layout.namespace
        names = {_text(k) for k in self.r.scan_iter(match=f"{ns}:*.XQ", count=500)}
        return sorted(n[len(ns) + 1 : -3] for n in names)

    def count(self, queue: str) -> int:
        return int(self.r.zcard(self.layout.dead(queue)))

    def entries(self, queue: str) -> list[tuple[str, float, bytes | None]]:
        """(Redis id, when it died in seconds, encoded message) for each dead letter, oldest first."""
        scored: list[tuple[bytes, float]] = self.r.zrange(  # type: ignore[assignment]
            self.layout.dead(queue), 0, -1, withscores=True
        )
        if not scored:
            return []
        ids = [_text(rid) for rid, _ in scored]
        bodies: list[bytes | None] = self.r.hmget(self.layout.dead_messages(queue), ids)  # type: ignore[assignment]
        return [
            (rid, float(score) / 1000, body)
            for rid, (_, score), body in zip(ids, scored, bodies, strict=True)
        ]

    def replay(self, queue: str, redis_id: str, body: bytes, target: str, new_id: str) -> bool:
        """Move dead letter `redis_id` of `queue` onto `target` as `body` under `new_id`; False if gone."""
        keys = [
            self.layout.dead(queue),
            self.layout.dead_messages(queue),
            self.layout.queue(target),
            self.layout.messages(target),
        ]
        return bool(self._replay(keys=keys, args=[redis_id, new_id, body]))

    def purge(self, queue: str, *also: str) -> int:
        """Drop `queue`'s dead letters (and the keys `also`); returns how many there were."""
        dropped = self.count(queue)
        self.r.delete(self.layout.dead(queue), self.layout.dead_messages(queue), *also)
        return dropped


# A command dispatch.lua has no branch for: the call only heartbeats and, when asked, maintains.
_MAINTAIN_ONLY = "wandstore_maintain"


def dead_workers(broker: RedisBroker, now_ms: int | None = None) -> list[str]:
    """Workers whose last heartbeat is older than the broker's `heartbeat_timeout` (gap 8)."""
    now_ms = current_millis() if now_ms is None else now_ms
    found = broker.client.zrangebyscore(
        f"{broker.namespace}:__heartbeats__", 0, now_ms - broker.heartbeat_timeout
    )
    return sorted(_text(w) for w in found)  # type: ignore[arg-type]


def claimed_by(broker: RedisBroker, worker_ids: Iterable[str], queues: Iterable[str]) -> int:
    """How many messages `worker_ids` hold claimed on `queues` (gap 8)."""
    layout = Layout(broker.namespace)
    pipe = broker.client.pipeline(transaction=False)
    for worker in worker_ids:
        for queue in queues:
            pipe.scard(layout.claims(worker, queue))
    return sum(int(n) for n in pipe.execute())


def maintain(broker: RedisBroker, queues: Iterable[str], *, requeue_dead: bool = True) -> None:
    """This worker's heartbeat, then (if `requeue_dead`) Dramatiq's maintenance on each queue (gap 8).

    Maintenance puts the messages claimed on `queue` by workers silent for longer than
    `broker.heartbeat_timeout` back on `queue`, and drops dead letters older than
    `broker.dead_message_ttl`. One round trip for every queue.
    """
    names = sorted(queues) if requeue_dead else sorted(queues)[:1]
    if not names:
        return
    dispatch = broker.scripts["dispatch"]
    now = current_millis()
    limit = broker._max_unpack_size()
    pipe = broker.client.pipeline(transaction=False)
    for queue in names:
        # ARGV as dispatch.lua's header lays it out (tests/unit/test_dramatiq_pin.py checks it).
        args = [
            _MAINTAIN_ONLY,
            now,
            queue,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            1 if requeue_dead else 0,
            limit,
        ]
        dispatch(keys=[broker.namespace], args=args, client=pipe)
    pipe.execute()


def location_of(message: Any) -> tuple[str, str] | None:
    """(queue, Redis id) of the copy of `message` a Redis broker just enqueued (gap 9)."""
    redis_id = (getattr(message, "options", None) or {}).get("redis_message_id")
    return (str(message.queue_name), str(redis_id)) if redis_id else None


def present(client: redis.Redis, places: list[tuple[str, str]], namespace: str = "dramatiq") -> list[bool]:
    """For each (queue, Redis id): is that copy still queued, delayed or running? (gap 9)"""
    if not places:
        return []
    layout = Layout(namespace)
    pipe = client.pipeline(transaction=False)
    for queue, redis_id in places:
        pipe.hexists(layout.messages(queue), redis_id)
    return [bool(x) for x in pipe.execute()]


def find_messages(
    client: redis.Redis, queues: Iterable[str], message_ids: Iterable[str], namespace: str = "dramatiq"
) -> dict[str, tuple[str, str]]:
    """Message id -> (queue, Redis id) of any copy of those messages queued, delayed, running or
    dead-lettered on `queues` (each with its delay queue). Reads every body: for the few jobs
    whose recorded location is gone, not for every job (gap 9)."""
    wanted = set(message_ids)
    found: dict[str, tuple[str, str]] = {}
    if not wanted:
        return found
    layout = Layout(namespace)
    for queue in sorted({q_name(q) for q in queues}):
        for name, key in (
            (queue, layout.messages(queue)),
            (dq_name(queue), layout.messages(dq_name(queue))),
            (queue + ".XQ", layout.dead_messages(queue)),
        ):
            for rid, body in client.hscan_iter(key, count=500):
                try:
                    message_id = json.loads(body).get("message_id")
                except (ValueError, AttributeError):
                    continue  # undecodable: the consumer dead-letters it (gap 1)
                if message_id in wanted:
                    found[message_id] = (name, _text(rid))
                    if len(found) == len(wanted):
                        return found
    return found


def queue_depth(
    client: redis.Redis, queues: Iterable[str], namespace: str = "dramatiq"
) -> dict[str, tuple[int, int]]:
    """Per queue: (messages queued, delayed or in flight; dead letters), in one round trip (gap 6)."""
    layout = Layout(namespace)
    names = list(queues)
    pipe = client.pipeline(transaction=False)
    for queue in names:
        pipe.hlen(layout.messages(queue))
        pipe.hlen(layout.messages(dq_name(queue)))
        pipe.zcard(layout.dead(queue))
    values = pipe.execute()
    return {q: (values[3 * i] + values[3 * i + 1], values[3 * i + 2]) for i, q in enumerate(names)}


REPEAT_WINDOW_S = 2.0
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
Handler = Callable[[int, Any], Any]


def ignoring_repeats(handler: Handler, window_s: float = REPEAT_WINDOW_S) -> Handler:
    """`handler`, except that a stop signal within `window_s` of the first one is dropped (gap 5).

    Platforms stop a process group by signalling every process in it (Heroku, systemd's
    `KillMode=control-group`, `kill -- -PGID`): a worker process then gets SIGTERM from the
    platform and again, within a millisecond, relayed by Dramatiq's main process. Measured
    before this guard: the second one hit `sys.exit` mid-shutdown, the process never exited
    (the event loop thread kept it alive) and went on pulling messages whose jobs failed on
    "cannot schedule new futures after interpreter shutdown" until they were dead-lettered.
    A stop signal sent later (an operator who means "now") still kills, as Dramatiq intends.
    """
    first: list[float] = []

    def guarded(signum: int, frame: Any) -> Any:
        now = time.monotonic()
        if first and now - first[0] < window_s:
            log.info("stop_signal_repeat_ignored", signal=signal.Signals(signum).name)
            return None
        first[:] = [now]
        return handler(signum, frame)

    guarded.__wrapped__ = handler  # type: ignore[attr-defined]
    return guarded


class StopOnce(Middleware):
    """Guard a `dramatiq` CLI worker process's stop handlers (gap 5)."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # a worker started inside another program (tests): its signals are not ours
        for sig in _STOP_SIGNALS:
            handler = signal.getsignal(sig)
            # Only the CLI worker process's own handler: never another program's.
            if callable(handler) and getattr(handler, "__module__", "") == "dramatiq.cli":
                signal.signal(sig, ignoring_repeats(handler))


def hold_only_what_runs(worker: Any) -> None:
    """Gap 10: a worker's consumers prefetch no more messages than it has threads to run them.

    Called before the worker's consumers start (a `before_worker_boot` hook); Dramatiq's own
    `dramatiq_queue_prefetch`, when set, wins.
    """
    if not QUEUE_PREFETCH:
        worker.queue_prefetch = worker.worker_threads


def served_queues(worker: Any) -> frozenset[str] | None:
    """Gap 11: the queues `worker` consumes (the CLI's `--queues`), or None: every queue."""
    queues = getattr(worker, "consumer_whitelist", None)
    return frozenset(queues) if queues else None


__all__ = [
    "DRAMATIQ_VERSION",
    "REPEAT_WINDOW_S",
    "DeadLetterStore",
    "DurableRetries",
    "GuardedConsumer",
    "Layout",
    "StopOnce",
    "claimed_by",
    "dead_workers",
    "exception_of",
    "find_messages",
    "hold_only_what_runs",
    "ignoring_repeats",
    "location_of",
    "maintain",
    "present",
    "queue_depth",
    "served_queues",
]
