"""Deliveries: a finished generation POSTed to its `callback_url`, signed, retried by one rule.

Webhooks and personalization callbacks share the envelope, the headers and the signature
(`X-Wandstore-Signature`, adapters/signing.py, made afresh for every attempt), and one rule:
network errors, 408, 425, 429 and 5xx are tried again after `adapters.retry.backoff_s` (never
before the receiver's Retry-After); a first 400 once more (a receiver whose clock disagrees
with the signature's timestamp); any other 4xx is a refusal. Redirects are not followed.
Before every attempt the URL's host is resolved once and checked, and the POST connects to the
address that passed (adapters/egress.py `pin`). The signature's timestamp is the Redis
server's clock, so a worker whose own clock is off still signs in time.

Only who waits between attempts differs. A batch job's webhook is the `deliver_webhook` actor
on the `deliveries` queue (not `batch`: a slow receiver must not hold batch work up), one
attempt per message, the next one a `dramatiq.Retry` (a wait holds no worker thread and
outlives a restart). At most `WEBHOOK_STORE_CONCURRENCY` of one store's attempts are in flight
across the fleet (`pipelines/fair_slots.py`); one more is put off (`Deferred`, not counted as
an attempt; Dramatiq's backoff, 100 ms doubling to 5 s), so a slow receiver slows only its own
store's deliveries.
A shopper's storefront can't wait behind batch work: the interactive worker sends its
callback itself, in the background, a few quick attempts (`callback_*`), at most
`CALLBACK_STORE_CONCURRENCY` of one store's at once in a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import httpx
import redis
from dramatiq import Broker, Message

from adapters import __version__
from adapters.egress import REFUSED_PRIVATE, pin
from adapters.errors import InvalidInput, NotFound, RetryableError, StoreError
from adapters.logs import get_logger
from adapters.retry import acall, backoff_s, retry_after_s
from adapters.settings import Settings
from adapters.signing import HEADER, WebhookSecrets, sign
from adapters.store import ObjectStore
from pipelines.fair_slots import StoreSlots
from pipelines.queues import DELIVERIES
from pipelines.status import JobStatus

ACTOR = "deliver_webhook"
EVENT = "generation.finished"
MAX_INLINE_OUTPUT_BYTES = 512 * 1024
RETRY_STATUSES = frozenset({408, 425, 429})  # worth another attempt, besides 5xx and network errors
WEBHOOK_MAX_WAIT_S = 600.0
CALLBACK_MAX_WAIT_S = 5.0  # a shopper's storefront is waiting: a later answer is no answer
_FIELDS = ("store", "pipeline", "status", "output_keys", "cost_usd", "served", "error", "finished_at")
log = get_logger("pipelines.delivery")


class Undelivered(RetryableError):
    """An attempt failed in a way worth repeating; `retry_after` is the receiver's Retry-After."""


class Deferred(dramatiq.Retry):
    """The store has its fill of deliveries in flight: run this one later (not an attempt)."""


SLOT_MARGIN_MS = 5000  # a slot outlives its attempt's timeout by this much (DNS, signing, Redis)


def envelope(job: Mapping[str, Any], *, output: Any = None, **extra: Any) -> dict[str, Any]:
    """The body every receiver sees: the job's outcome, then `extra`, then the output document if any."""
    body: dict[str, Any] = {"event": EVENT, "id": job["id"], **{k: job.get(k) for k in _FIELDS}, **extra}
    if output is not None:
        body["output"] = output
    return body


def job_envelope(info: Mapping[str, Any], objects: ObjectStore) -> dict[str, Any]:
    """A batch job's envelope, with its output inline when it has one small JSON document."""
    keys = list(info.get("output_keys") or [])
    output = None
    if info.get("status") == "done" and len(keys) == 1:
        try:
            obj = objects.get(keys[0])
        except (NotFound, StoreError) as exc:
            log.warning("webhook_output_unreadable", key=keys[0], error=str(exc))
        else:
            if obj.content_type.startswith("application/json") and len(obj.body) <= MAX_INLINE_OUTPUT_BYTES:
                output = obj.json()
    # Copy and theme builds write a draft first: which one, and whether it went live at once.
    drafted = {}
    if info.get("draft_id"):
        drafted = {"draft_id": info["draft_id"], "live": info.get("live") == "true"}
    return envelope({**info, "output_keys": keys}, output=output, **drafted)


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def headers(body: bytes, secret: str, delivery: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers of one attempt (`delivery` is `{job id}.{attempt}`), signed at `timestamp` (now)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": f"wandstore-agents/{__version__}",
        "X-Wandstore-Event": EVENT,
        "X-Wandstore-Delivery": delivery,
        HEADER: sign(secret, body, timestamp),
    }


def retryable(status_code: int, attempt: int = 2) -> bool:
    """Whether a failed answer is worth another attempt; any other 4xx will not change if sent again.

    A first 400 gets one more try: receivers that check the signature's timestamp answer 400
    when clocks disagree, and the next attempt is signed afresh.
    """
    return status_code >= 500 or status_code in RETRY_STATUSES or (status_code == 400 and attempt == 1)


def _transport_error(exc: httpx.HTTPError) -> str:
    """What a tenant may read about a failed connection: the kind, not addresses or timings."""
    if isinstance(exc, httpx.TimeoutException):
        return "receiver timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the receiver"
    return "transport error talking to the receiver"


def no_secret(store: str) -> str:
    return (
        f"store {store} has no webhook signing secret: ops make one with "
        f"`wandstore-agents tokens webhook-secret {store}`"
    )


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
_clients = weakref.WeakKeyDictionary()


def _client() -> httpx.AsyncClient:
    """One client per event loop: building one loads TLS certificates (~200 ms)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(follow_redirects=False)
    return client


def _server_time(client: Any) -> int | None:
    """The Redis server's clock in seconds: one clock for every worker (None: use this host's)."""
    if client is None:
        return None
    try:
        seconds, _ = client.time()
    except redis.RedisError:
        return None
    return int(seconds)


def enqueue_delivery(broker: Broker, store: str, job_id: str) -> str:
    """Queue the first delivery attempt of a finished batch job's webhook."""
    message: Message[Any] = Message(
        queue_name=DELIVERIES, actor_name=ACTOR, args=(store, job_id), kwargs={}, options={}
    )
    broker.enqueue(message)
    return message.message_id


@dataclass
class Delivery:
    """One body on its way to one URL; `records` (the job's `deliveries`) grows by one per attempt."""

    url: str
    body: bytes
    secret: str
    delivery_id: str
    timeout_s: float
    allow_private: bool
    clock: Any = None  # the Redis client whose TIME signs the attempt (None: this host's clock)
    records: list[dict[str, Any]] = field(default_factory=list)

    async def attempt(self) -> None:
        """POST once and record it; raise `Undelivered` if another attempt is worth it."""
        n = len(self.records) + 1
        record: dict[str, Any] = {"attempt": n, "at": time.time()}
        self.records.append(record)
        again: Undelivered | None = None
        started = time.perf_counter()
        try:
            # Resolved now, once: the API saw only the URL, not where its name points now, and
            # the POST goes to the address checked here, not to a second lookup's answer.
            target = await asyncio.to_thread(pin, self.url, allow_private=self.allow_private)
            now = await asyncio.to_thread(_server_time, self.clock)
            sent = {**headers(self.body, self.secret, f"{self.delivery_id}.{n}", now), **target.headers}
            response = await _client().post(
                target.url,
                content=self.body,
                headers=sent,
                timeout=self.timeout_s,
                extensions=target.extensions,
            )
        except InvalidInput as exc:
            record["error"] = str(exc)
        except httpx.HTTPError as exc:
            record["error"] = _transport_error(exc)
            again = Undelivered(record["error"])
        else:
            code = record["status_code"] = response.status_code
            if not 200 <= code < 300:
                record["error"] = f"receiver answered HTTP {code}"
                if retryable(code, n):
                    asked = retry_after_s(response.headers.get("retry-after"))
                    again = Undelivered(record["error"], retry_after=asked)
        if record.get("error") != REFUSED_PRIVATE:  # no timings for addresses it never reached
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        log.info("webhook_attempt", delivery=f"{self.delivery_id}.{n}", retry=bool(again), **record)
        if again is not None:
            raise again

    @property
    def state(self) -> str:
        return "failed" if "error" in self.records[-1] else "delivered"


async def deliver_job(
    client: redis.Redis, objects: ObjectStore, settings: Settings, store: str, job_id: str
) -> None:
    """Make a batch job's next attempt and record it; raise `dramatiq.Retry` if another should follow.

    Raises `Deferred` (Dramatiq then backs off: `min_backoff` doubling to `max_backoff` of the
    actor) while the store has `WEBHOOK_STORE_CONCURRENCY` deliveries in flight.
    """
    slots = StoreSlots(client, DELIVERIES)
    hold_ms = int(settings.webhook_timeout_s * 1000) + SLOT_MARGIN_MS
    slot = slots.take(store, settings.webhook_store_concurrency, hold_ms)
    if not slot.taken:
        raise Deferred(f"store {store} has {settings.webhook_store_concurrency} deliveries in flight")
    try:
        await _deliver_job(client, objects, settings, store, job_id)
    finally:
        slots.give_back(slot)


async def _deliver_job(
    client: redis.Redis, objects: ObjectStore, settings: Settings, store: str, job_id: str
) -> None:
    status = JobStatus(client)
    info = status.get(job_id)
    if info is None or not info.get("callback_url"):
        log.warning("webhook_nothing_to_deliver", job_id=job_id)
        return
    body = encode(job_envelope(info, objects))
    secret = WebhookSecrets(client).get(store)
    if secret is None:
        records = [
            *(info.get("deliveries") or []),
            {"attempt": 0, "at": time.time(), "error": no_secret(store)},
        ]
        status.update(job_id, deliveries=records, webhook="failed")
        log.error("webhook_without_secret", store=store, job_id=job_id)
        return
    timeout_s, allow_private = settings.webhook_timeout_s, settings.webhook_allow_private_hosts
    sending = Delivery(str(info["callback_url"]), body, secret, job_id, timeout_s, allow_private, client)
    sending.records = list(info.get("deliveries") or [])
    try:
        await sending.attempt()
    except Undelivered as exc:
        n = len(sending.records)
        if n < settings.webhook_max_attempts:
            status.update(job_id, deliveries=sending.records, webhook="retrying")
            wait_s = backoff_s(n, settings.webhook_backoff_ms / 1000, WEBHOOK_MAX_WAIT_S, exc.retry_after)
            raise dramatiq.Retry(f"webhook for {job_id}: {exc}", delay=int(wait_s * 1000)) from None
    status.update(job_id, deliveries=sending.records, webhook=sending.state)


async def deliver_callback(
    client: redis.Redis,
    settings: Settings,
    url: str,
    payload: Mapping[str, Any],
    *,
    job_id: str,
    delivery_id: str,
) -> None:
    """Deliver `payload` from here, attempts a backoff apart; record them on `job_id` (if any).

    At most `CALLBACK_STORE_CONCURRENCY` of one store's callbacks are in flight in this process;
    one more waits for a place at most `CALLBACK_MAX_WAIT_S`, then is recorded failed.
    """
    store = str(payload["store"])
    gate = _callback_gate(store, settings.callback_store_concurrency)
    try:
        await asyncio.wait_for(gate.acquire(), CALLBACK_MAX_WAIT_S)
    except TimeoutError:
        log.warning("callback_store_saturated", store=store, job_id=job_id)
        if job_id:
            busy = f"store {store} had {settings.callback_store_concurrency} callbacks in flight"
            refused = [{"attempt": 0, "at": time.time(), "error": busy}]
            await asyncio.to_thread(JobStatus(client).update, job_id, deliveries=refused, webhook="failed")
        return
    try:
        await _deliver_callback(client, settings, url, payload, job_id=job_id, delivery_id=delivery_id)
    finally:
        gate.release()


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]]
_gates = weakref.WeakKeyDictionary()


def _callback_gate(store: str, cap: int) -> asyncio.Semaphore:
    """The store's callbacks in flight on this event loop (a slow receiver loads only its own store's)."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    gate = gates.get(store)
    if gate is None:
        gate = gates[store] = asyncio.Semaphore(cap)
    return gate


async def _deliver_callback(
    client: redis.Redis,
    settings: Settings,
    url: str,
    payload: Mapping[str, Any],
    *,
    job_id: str,
    delivery_id: str,
) -> None:
    store = str(payload["store"])
    secret = await asyncio.to_thread(WebhookSecrets(client).get, store)
    if secret is None:
        log.error("callback_without_secret", store=store, job_id=job_id)
        if job_id:
            refused = [{"attempt": 0, "at": time.time(), "error": no_secret(store)}]
            await asyncio.to_thread(JobStatus(client).update, job_id, deliveries=refused, webhook="failed")
        return
    timeout_s, allow_private = settings.callback_timeout_s, settings.webhook_allow_private_hosts
    sending = Delivery(url, encode(payload), secret, delivery_id, timeout_s, allow_private, client)
    with contextlib.suppress(Undelivered):
        await acall(
            sending.attempt,
            on=Undelivered,
            base_s=settings.callback_backoff_ms / 1000,
            cap_s=CALLBACK_MAX_WAIT_S,
            attempts=settings.callback_max_attempts,
        )
    if job_id:
        await asyncio.to_thread(
            JobStatus(client).update, job_id, deliveries=sending.records, webhook=sending.state
        )
