"""Signed callbacks from the interactive worker: POST a result, retried with backoff, bounded.

Same envelope, headers and signature as the API's webhooks (`pipelines/webhooks.py`,
`adapters.signing`): `X-Wandstore-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
f"{t}.{body}")>` with the store's webhook secret, re-signed on every attempt so a
receiver's freshness check passes. Those webhooks are a `batch` actor; a storefront waiting
for a personalization can't wait behind batch work, so this lane delivers in-process, in
the background, a few quick attempts. Like them it goes to public addresses only (unless
WEBHOOK_ALLOW_PRIVATE_HOSTS), checked again before every attempt. Redirects are not
followed; 408, 425, 429, 5xx and network errors are retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx

from adapters import __version__
from adapters.egress import check_callback_url
from adapters.errors import InvalidInput
from adapters.logs import get_logger
from adapters.signing import HEADER, sign

log = get_logger("pipelines.callbacks")
RETRY_STATUSES = frozenset({408, 425, 429})


class CallbackSender:
    """One HTTP client per event loop, shared by every delivery on it."""

    def __init__(self, *, timeout_s: float, max_attempts: int, backoff_ms: int) -> None:
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_ms = backoff_ms
        self._clients: dict[int, httpx.AsyncClient] = {}

    def _client(self) -> httpx.AsyncClient:
        loop_id = id(asyncio.get_running_loop())
        client = self._clients.get(loop_id)
        if client is None or client.is_closed:
            client = self._clients[loop_id] = httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=False
            )
        return client

    async def deliver(
        self, url: str, body: bytes, secret: str, *, event: str, delivery_id: str, allow_private: bool
    ) -> list[dict[str, Any]]:
        """POST `body` until a 2xx, a refusal, or `max_attempts`; returns one record per attempt."""
        attempts: list[dict[str, Any]] = []
        for attempt in range(1, self.max_attempts + 1):
            try:
                # Resolved before every attempt, as the API's webhooks do: a name may point
                # somewhere private by now.
                await asyncio.to_thread(check_callback_url, url, allow_private=allow_private, resolve=True)
            except InvalidInput as exc:
                attempts.append({"attempt": attempt, "at": time.time(), "error": str(exc)})
                break
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"wandstore-agents/{__version__}",
                "X-Wandstore-Event": event,
                "X-Wandstore-Delivery": f"{delivery_id}.{attempt}",
                HEADER: sign(secret, body),
            }
            record: dict[str, Any] = {"attempt": attempt, "at": time.time()}
            started = time.perf_counter()
            retry = True
            try:
                response = await self._client().post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"[:300]
            else:
                record["status_code"] = response.status_code
                if 200 <= response.status_code < 300:
                    retry = False
                else:
                    record["error"] = f"receiver answered HTTP {response.status_code}"
                    # Any other 4xx is a refusal: sending it again will not change the answer.
                    retry = response.status_code >= 500 or response.status_code in RETRY_STATUSES
            record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            attempts.append(record)
            if not retry or attempt == self.max_attempts:
                break
            await asyncio.sleep(self.backoff_ms * 2 ** (attempt - 1) * random.uniform(1.0, 1.5) / 1000)
        last = attempts[-1]
        if "error" in last:
            log.warning("callback_failed", webhook_event=event, attempts=len(attempts), error=last["error"])
        else:
            log.info(
                "callback_delivered",
                webhook_event=event,
                attempts=len(attempts),
                status_code=last["status_code"],
            )
        return attempts
