"""Dead letters: what Dramatiq gave up on, why, and putting it back.

Dramatiq's Redis broker keeps a queue's dead letters for 7 days (read and written through
`pipelines.dramatiq_gaps.DeadLetterStore`, the one place that knows its keys). The reason lives
in the job's status hash (`wandstore:job:{message id}`: `error`, `attempts`), written by
`JobTracking` or, for a message no actor ever ran (unknown actor), by `DeadLetterReasons` here.
Messages that do not even decode have no job; their reason is kept in
`wandstore:dlq:undecodable:{queue}`.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from dramatiq import JSONEncoder, Message, Retry
from dramatiq.common import q_name
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import Middleware, SkipMessage

from adapters.errors import BrokerUnavailable, InvalidInput
from adapters.logs import get_logger, scrub
from adapters.pipeline_names import canonical
from pipelines.dramatiq_gaps import DeadLetterStore, exception_of
from pipelines.status import PREFIX as JOB_PREFIX
from pipelines.status import JobStatus

UNDECODABLE = "wandstore:dlq:undecodable:"
# Options that belong to one delivery, not to the job: dropped when a dead letter is replayed.
_DELIVERY_OPTIONS = ("redis_message_id", "eta", "traceback", "requeue_timestamp", "retries")
log = get_logger("pipelines.dead_letters")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def reason_of(exception: BaseException | None) -> str:
    """`Type: message`, secrets scrubbed, as job status keeps it."""
    if exception is None:
        return "dead-lettered without an exception"
    # SkipMessage (from a before-hook) and Retry (a rate limit) wrap what really happened.
    while isinstance(exception, SkipMessage | Retry) and exception.__cause__ is not None:
        exception = exception.__cause__
    return scrub(f"{type(exception).__name__}: {exception}")[:2000]


def record_undecodable(client: redis.Redis, queue: str, redis_id: str, reason: str) -> None:
    """Keep why a message that cannot be decoded was dead-lettered (it has no job to hold it)."""
    entry = {"reason": scrub(reason)[:2000], "dead_at": time.time(), "attempts": 1}
    client.hset(UNDECODABLE + q_name(queue), redis_id, json.dumps(entry))


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message: what it was, why it failed, when, after how many tries."""

    id: str  # the job (message) id, or the Redis id of a message that does not decode
    redis_id: str
    queue: str
    dead_at: float
    actor: str | None
    store: str | None
    reason: str
    attempts: int
    message: Message[Any] | None = dataclasses.field(default=None, repr=False)
    raw: bytes = dataclasses.field(default=b"", repr=False)

    @property
    def replayable(self) -> bool:
        return self.message is not None

    def summary(self) -> dict[str, Any]:
        """A JSON view (what `dlq list --json` prints)."""
        return {
            "id": self.id,
            "queue": self.queue,
            # The pipeline's name (`theme_build`, not the actor `build_theme`); an unknown actor's as is.
            "pipeline": canonical(self.actor) if self.actor else None,
            "store": self.store,
            "reason": self.reason,
            "attempts": self.attempts,
            "dead_at": self.dead_at,
            "replayable": self.replayable,
        }

    def detail(self) -> dict[str, Any]:
        """Everything, with the message's arguments (what `dlq show` prints)."""
        out = {**self.summary(), "actor": self.actor, "redis_id": self.redis_id}  # the message, as queued
        if self.message is not None:
            out.update(args=list(self.message.args), kwargs=self.message.kwargs, options=self.message.options)
        else:
            out["raw"] = self.raw[:2000].decode("utf-8", "replace")
        return out


def message_fields(data: bytes | None) -> dict[str, Any]:
    """A stored message's fields, type-checked; raise `InvalidInput` saying what is wrong."""
    if data is None:
        raise InvalidInput("the message body is missing")
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the message is not JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise InvalidInput(f"the message is a JSON {type(fields).__name__}, not an object")
    types = {
        "queue_name": str,
        "actor_name": str,
        "args": list,
        "kwargs": dict,
        "options": dict,
        "message_id": str,
        "message_timestamp": int,
    }
    for name, kind in types.items():
        if not isinstance(fields.get(name), kind) or isinstance(fields.get(name), bool):
            raise InvalidInput(f"the message's {name!r} is missing or not a {kind.__name__}")
    extra = sorted(set(fields) - set(types))
    if extra:
        raise InvalidInput(f"the message has unknown fields {extra}")
    if not isinstance(fields["options"].get("redis_message_id", ""), str):
        raise InvalidInput("the message's redis_message_id is not a string")
    return fields


def decode(data: bytes | None) -> Message[Any]:
    """Decode and type-check a stored message; raise `InvalidInput` saying what is wrong."""
    fields = message_fields(data)
    return Message(**{**fields, "args": tuple(fields["args"])})


class MessageEncoder(JSONEncoder):
    """Dramatiq's JSON encoder, refusing a message whose fields have the wrong types.

    The composition root makes it Dramatiq's encoder (`dramatiq.set_encoder`): such a message
    then fails to decode in the consumer, which dead-letters it with the reason
    (`pipelines.dramatiq_gaps.GuardedConsumer`), instead of failing later in ways that strand
    it (`options` a string, `message_id` a list) or running with its `args` spread.
    """

    def decode(self, data: bytes) -> dict[str, Any]:
        return message_fields(data)


class DeadLetters:
    """Read, replay and purge the dead-letter queues of one Redis broker namespace."""

    def __init__(self, client: redis.Redis, namespace: str = "dramatiq") -> None:
        self.r = client
        self.store = DeadLetterStore(client, namespace)

    def queues(self) -> list[str]:
        """Every queue that has dead letters."""
        try:
            return self.store.queues()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not list dead-letter queues: {exc}") from None

    def count(self, queue: str | None = None) -> int:
        return sum(self.store.count(q) for q in ([queue] if queue else self.queues()))

    def list(self, queue: str | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        out: list[DeadLetter] = []
        for q in [queue] if queue else self.queues():
            out.extend(self._entries(q))
        out.sort(key=lambda d: d.dead_at)
        return out

    def _entries(self, queue: str) -> Iterator[DeadLetter]:
        try:
            entries = self.store.entries(queue)
            if not entries:
                return
            undecodable: dict[bytes, bytes] = self.r.hgetall(UNDECODABLE + q_name(queue))  # type: ignore[assignment]
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read the dead letters of {queue!r}: {exc}") from None
        notes = {_text(k): json.loads(v) for k, v in undecodable.items()}
        for rid, dead_at, body in entries:
            yield self._entry(queue, rid, dead_at, body, notes.get(rid))

    def _entry(
        self, queue: str, rid: str, dead_at: float, body: bytes | None, note: dict[str, Any] | None
    ) -> DeadLetter:
        try:
            message = decode(body)
        except InvalidInput as exc:
            reason = (note or {}).get("reason") or f"undecodable message: {exc}"
            attempts = int((note or {}).get("attempts", 1))
            return DeadLetter(rid, rid, queue, dead_at, None, None, reason, attempts, None, body or b"")
        info = JobStatus(self.r).get(message.message_id) or {}
        store = message.args[0] if message.args and isinstance(message.args[0], str) else None
        return DeadLetter(
            id=message.message_id,
            redis_id=rid,
            queue=queue,
            dead_at=dead_at,
            actor=message.actor_name,
            store=info.get("store") or store,
            reason=str(info.get("error") or "no reason recorded (the job status expired or was never kept)"),
            attempts=int(info.get("attempts") or 0),
            message=message,
            raw=body or b"",
        )

    def get(self, ident: str, queue: str | None = None) -> DeadLetter:
        """One dead letter by job id or Redis id; raises `InvalidInput` naming how to find ids."""
        for entry in self.list(queue):
            if ident in (entry.id, entry.redis_id):
                return entry
        raise InvalidInput(f"no dead letter {ident!r}; `wandstore-agents dlq list` shows their ids")

    def replay(self, entry: DeadLetter) -> str:
        """Put a dead letter back on its queue as a fresh delivery of the same job; returns the job id.

        The job keeps its id (its status, a theme build's saved steps) and its history: `attempts`
        counts on, `replays` counts replays, and the ledger tells the new spend apart (see
        `pipelines.accounting.attempt_of`).
        """
        if entry.message is None:
            raise InvalidInput(
                f"dead letter {entry.id} does not decode ({entry.reason}); it cannot be replayed, only purged"
            )
        queue = q_name(entry.message.queue_name)
        options = {k: v for k, v in entry.message.options.items() if k not in _DELIVERY_OPTIONS}
        options["replays"] = int(options.get("replays", 0) or 0) + 1
        new_id = str(uuid.uuid4())
        options["redis_message_id"] = new_id
        message = dataclasses.replace(entry.message, queue_name=queue, options=options)
        try:
            moved = self.store.replay(entry.queue, entry.redis_id, message.encode(), queue, new_id)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not replay {entry.id}: {exc}") from None
        if not moved:
            raise InvalidInput(f"dead letter {entry.id} was already replayed or purged")
        status = JobStatus(self.r)
        info = status.get(entry.id) or {}
        status.update(
            entry.id,
            status="queued",
            progress=f"replayed from the dead-letter queue ({options['replays']})",
            replays=options["replays"],
            last_error=info.get("error") or entry.reason,
        )
        self.r.hdel(JOB_PREFIX + entry.id, "error", "finished_at")
        log.info("dead_letter_replayed", job_id=entry.id, queue=queue, replays=options["replays"])
        return entry.id

    def purge(self, queue: str | None = None) -> int:
        """Drop every dead letter (of `queue`, or of every queue); returns how many."""
        dropped = 0
        for q in [queue] if queue else self.queues():
            dropped += self.store.purge(q, UNDECODABLE + q_name(q))
        log.info("dead_letters_purged", queue=queue or "*", count=dropped)
        return dropped


class DeadLetterReasons(Middleware):
    """Give every dead letter a reason in its job status, even one no actor ever ran."""

    def after_nack(self, broker: Any, message: Any) -> None:
        from pipelines.durable import DurableStatus

        exception = exception_of(message)
        reason = reason_of(exception)
        status = DurableStatus(broker.client)
        try:
            info = status.get(message.message_id) or {}
            fields: dict[str, Any] = {
                "status": "failed",
                "dead_letter_queue": q_name(message.queue_name),
                "dead_at": _iso(time.time()),
                "pipeline": canonical(info.get("pipeline") or message.actor_name),
                "queue": info.get("queue") or q_name(message.queue_name),
            }
            if not info.get("error"):
                fields.update(error=reason, progress=f"failed: {reason}", finished_at=time.time())
            if isinstance(exception, ActorNotFound):
                # Refused in the consumer: no middleware counted this try.
                status.incr_attempts(message.message_id)
            status.update(message.message_id, **fields)
        except BrokerUnavailable as exc:
            log.error("dead_letter_reason_lost", job_id=message.message_id, error=str(exc), reason=reason)
            return
        log.error("job_dead_lettered", job_id=message.message_id, queue=message.queue_name, reason=reason)
