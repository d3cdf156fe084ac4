"""Webhook delivery: POST a finished generation to its `callback_url`, signed, with retries.

Runs in the worker (actor `deliver_webhook`), never in the web process. Each attempt is
appended to the job's `deliveries`; a failed attempt is retried by Dramatiq after an
exponential backoff, up to WEBHOOK_MAX_ATTEMPTS attempts; a 4xx other than 408, 425 or 429
is a refusal and is not retried.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import dramatiq
import httpx
import redis
from dramatiq import Broker, Message

from adapters import __version__
from adapters.egress import check_callback_url
from adapters.errors import InvalidInput, NotFound, StoreError
from adapters.logs import get_logger
from adapters.settings import Settings
from adapters.signing import HEADER, WebhookSecrets, sign
from adapters.store import ObjectStore
from pipelines.queues import BATCH
from pipelines.status import JobStatus

ACTOR = "deliver_webhook"
EVENT = "generation.finished"
MAX_INLINE_OUTPUT_BYTES = 512 * 1024
# Answers worth another attempt besides 5xx and network errors (the same rule as pipelines/callbacks.py).
RETRY_STATUSES = frozenset({408, 425, 429})
log = get_logger("pipelines.webhooks")


def enqueue_delivery(broker: Broker, store: str, job_id: str) -> str:
    """Queue the first delivery attempt for a finished job."""
    message: Message[Any] = Message(
        queue_name=BATCH, actor_name=ACTOR, args=(store, job_id), kwargs={}, options={}
    )
    broker.enqueue(message)
    return message.message_id


def build_payload(info: dict[str, Any], store: ObjectStore) -> dict[str, Any]:
    """The finished result: status, outputs, cost; the output document itself when there is one."""
    keys = list(info.get("output_keys") or [])
    payload: dict[str, Any] = {
        "event": EVENT,
        "id": info["id"],
        "store": info.get("store"),
        "pipeline": info.get("pipeline"),
        "status": info.get("status"),
        "output_keys": keys,
        "cost_usd": info.get("cost_usd"),
        "served": info.get("served"),
        "error": info.get("error"),
        "finished_at": info.get("finished_at"),
    }
    if info.get("status") == "done" and len(keys) == 1:
        try:
            obj = store.get(keys[0])
        except (NotFound, StoreError) as exc:
            log.warning("webhook_output_unreadable", key=keys[0], error=str(exc))
        else:
            if obj.content_type.startswith("application/json") and len(obj.body) <= MAX_INLINE_OUTPUT_BYTES:
                payload["output"] = obj.json()
    return payload


_clients: dict[int, httpx.AsyncClient] = {}


def _client(timeout_s: float) -> httpx.AsyncClient:
    """One client per event loop: building one loads TLS certificates (~200 ms)."""
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None or client.is_closed:
        client = _clients[loop_id] = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
    return client


def backoff_ms(attempt: int, base_ms: int) -> int:
    """Exponential backoff with jitter after the `attempt`-th failure (1-based), capped at 10 min."""
    delay = min(base_ms * 2 ** (attempt - 1), 600_000)
    return int(delay + random.uniform(0, delay / 4))


async def deliver(
    client: redis.Redis, objects: ObjectStore, settings: Settings, store: str, job_id: str
) -> None:
    """Make one delivery attempt; record it; raise `dramatiq.Retry` when another should follow."""
    status = JobStatus(client)
    info = status.get(job_id)
    if info is None or not info.get("callback_url"):
        log.warning("webhook_nothing_to_deliver", job_id=job_id)
        return
    deliveries: list[dict[str, Any]] = list(info.get("deliveries") or [])
    attempt = len(deliveries) + 1
    body = json.dumps(build_payload(info, objects), separators=(",", ":"), default=str).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"wandstore-agents/{__version__}",
        "X-Wandstore-Event": EVENT,
        "X-Wandstore-Delivery": f"{job_id}.{attempt}",
        HEADER: sign(WebhookSecrets(client).get_or_create(store), body),
    }
    started = time.perf_counter()
    record: dict[str, Any] = {"attempt": attempt, "at": time.time()}
    url = str(info["callback_url"])
    try:
        # Checked again here, resolved: the API saw only the URL, not where its name points now.
        await asyncio.to_thread(
            check_callback_url, url, allow_private=settings.webhook_allow_private_hosts, resolve=True
        )
        response = await _client(settings.webhook_timeout_s).post(url, content=body, headers=headers)
        code = response.status_code
        record["status_code"] = code
        ok = 200 <= code < 300
        # Any other 4xx is a refusal: sending it again will not change the answer.
        refused = 400 <= code < 500 and code not in RETRY_STATUSES
        if not ok:
            record["error"] = f"receiver answered HTTP {code}"
    except InvalidInput as exc:
        ok, refused = False, True
        record["error"] = str(exc)
    except httpx.HTTPError as exc:
        ok = refused = False
        record["error"] = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    deliveries.append(record)
    final = ok or refused or attempt >= settings.webhook_max_attempts
    state = "delivered" if ok else ("failed" if final else "retrying")
    status.update(job_id, deliveries=deliveries, webhook=state)
    log.info(
        "webhook_attempt", job_id=job_id, attempt=attempt, state=state, status_code=record.get("status_code")
    )
    if not final:
        raise dramatiq.Retry(
            f"webhook for {job_id}: {record['error']}", delay=backoff_ms(attempt, settings.webhook_backoff_ms)
        )
