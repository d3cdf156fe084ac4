"""Catalog-copy batches: one id for many `product_copy` jobs, counted as they finish.

Redis, under `wandstore:batch:<id>`:
- the hash: store, pipeline, created_at, submitted (jobs enqueued), rejected (refused at submission);
- `:jobs`: the job ids, in product order;
- `:done`, `:failed`: sets of job ids, filled when a job ends (`JobStatus.finished`)
  (sets, so a redelivered job is never counted twice);
- `:rejected`: JSON `{index, product_id, reason}` for products refused before enqueueing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from dramatiq import Broker, Message

from adapters.errors import BrokerUnavailable, InvalidInput
from adapters.store import ObjectStore
from agents.shopify import load_products
from domain.keys import check_store
from pipelines.fair_dispatch import send as fair_send
from pipelines.product_copy import parse_options
from pipelines.status import PREFIX as JOB_PREFIX
from pipelines.status import JobStatus
from pipelines.submit import product_copy_message

PREFIX = "wandstore:batch:"
TTL_S = 7 * 24 * 3600
MAX_FAILURES_SHOWN = 1000
_CHUNK = 200


def _key(batch_id: str, part: str = "") -> str:
    return PREFIX + batch_id + (f":{part}" if part else "")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class BatchSummary:
    id: str
    store: str
    pipeline: str
    total: int
    done: int
    failed: int
    created_at: float
    failures: list[dict[str, Any]] = field(default_factory=list)

    submitting: bool = False

    @property
    def pending(self) -> int:
        return max(0, self.total - self.done - self.failed)

    @property
    def state(self) -> str:
        if self.submitting:
            return "submitting"
        return "running" if self.pending > 0 else "finished"


class Batches:
    """Create batches, enqueue their jobs, and summarize them."""

    def __init__(self, broker: Broker, status: JobStatus) -> None:
        self.broker = broker
        self.status = status
        self.r: redis.Redis = status.r

    def submit_catalog_copy(
        self, store: str, products: list[Any], options: dict[str, Any] | None = None
    ) -> BatchSummary:
        """Validate each product; enqueue the valid ones, record the rest as failures with reasons.

        Products are released from `products` as they are enqueued, so a large export is not
        held twice (once parsed, once encoded).
        """
        check_store(store)
        parse_options(options)  # bad options refuse the whole batch
        batch_id = str(uuid.uuid4())
        created = time.time()
        self._write(batch_id, {"store": store, "pipeline": "product_copy", "created_at": created})
        jobs: list[str] = []
        messages: list[Message[Any]] = []
        rejected: list[str] = []
        submitted = rejected_count = 0
        for index in range(len(products)):
            product, products[index] = products[index], None
            try:
                message = product_copy_message(
                    self.status, store, product, options, extra={"batch": batch_id}
                )
            except InvalidInput as exc:
                product_id = product.get("id") if isinstance(product, dict) else None
                rejected.append(
                    json.dumps({"index": index, "product_id": _id_text(product_id), "reason": str(exc)})
                )
            else:
                messages.append(message)
                jobs.append(message.message_id)
            if len(jobs) + len(rejected) >= _CHUNK:
                # A chunk at a time into the store's fair lane, behind its single requests.
                fair_send(self.broker, store, messages, bulk=True)
                messages.clear()
                submitted, rejected_count = self._flush(batch_id, jobs, rejected, submitted, rejected_count)
        fair_send(self.broker, store, messages, bulk=True)
        self._flush(batch_id, jobs, rejected, submitted, rejected_count)
        self._write(batch_id, {"complete": 1})
        summary = self.get(batch_id)
        assert summary is not None
        return summary

    def submit_export(
        self, store: ObjectStore, slug: str, key: str, options: dict[str, Any] | None, max_bytes: int
    ) -> BatchSummary:
        """Read a products export (`{"products": [...]}` or a list) from the object store, then submit."""
        raw = store.get(key).body
        if len(raw) > max_bytes:
            raise InvalidInput(
                f"export {key!r} is {len(raw)} bytes; at most {max_bytes} (CATALOG_EXPORT_MAX_BYTES)"
            )
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InvalidInput(f"export {key!r} is not valid JSON: {exc}") from None
        del raw  # the parsed products are the only copy from here on
        return self.submit_catalog_copy(slug, load_products(data), options)

    def get(self, batch_id: str) -> BatchSummary | None:
        try:
            return self._get(batch_id)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not read batch {batch_id} from Redis: {exc}") from None

    # --- helpers -----------------------------------------------------------------

    def _get(self, batch_id: str) -> BatchSummary | None:
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(_key(batch_id))
        pipe.scard(_key(batch_id, "done"))
        pipe.smembers(_key(batch_id, "failed"))
        pipe.lrange(_key(batch_id, "rejected"), 0, MAX_FAILURES_SHOWN - 1)
        head, done, failed_ids, rejected = pipe.execute()
        if not head:
            return None
        info = {_text(k): _text(v) for k, v in head.items()}
        submitted, rejected_count = int(info.get("submitted", 0)), int(info.get("rejected", 0))
        failures = [json.loads(r) for r in rejected]
        failed_sorted = sorted(_text(j) for j in failed_ids)
        room = max(0, MAX_FAILURES_SHOWN - len(failures))
        shown = failed_sorted[:room]
        if shown:
            pipe = self.r.pipeline(transaction=False)
            for job_id in shown:
                pipe.hmget(JOB_PREFIX + job_id, "product_id", "error")
            for job_id, (product_id, error) in zip(shown, pipe.execute(), strict=True):
                failures.append(
                    {
                        "job_id": job_id,
                        "product_id": _text(product_id) if product_id else None,
                        "reason": _text(error) if error else "failed",
                    }
                )
        return BatchSummary(
            id=batch_id,
            store=info["store"],
            pipeline=info.get("pipeline", "product_copy"),
            total=submitted + rejected_count,
            done=int(done),
            failed=len(failed_ids) + rejected_count,
            created_at=float(info["created_at"]),
            failures=failures,
            submitting=info.get("complete") != "1",
        )

    def _write(self, batch_id: str, fields: dict[str, Any]) -> None:
        try:
            self.r.hset(_key(batch_id), mapping={k: str(v) for k, v in fields.items()})
            self.r.expire(_key(batch_id), TTL_S)
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record batch {batch_id} in Redis: {exc}") from None

    def _flush(
        self, batch_id: str, jobs: list[str], rejected: list[str], submitted: int, rejected_count: int
    ) -> tuple[int, int]:
        """Append this chunk's job ids and rejections, then bump the counters."""
        if not jobs and not rejected:
            return submitted, rejected_count
        submitted += len(jobs)
        rejected_count += len(rejected)
        try:
            pipe = self.r.pipeline(transaction=True)
            for part, values in (("jobs", jobs), ("rejected", rejected)):
                if values:
                    pipe.rpush(_key(batch_id, part), *values)
                    pipe.expire(_key(batch_id, part), TTL_S)
            pipe.hset(_key(batch_id), mapping={"submitted": submitted, "rejected": rejected_count})
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"could not record batch {batch_id} in Redis: {exc}") from None
        jobs.clear()
        rejected.clear()
        return submitted, rejected_count


def _id_text(value: Any) -> str | None:
    return None if value is None else str(value)[:128]


def job_ids(client: redis.Redis, batch_id: str) -> Iterable[str]:
    """Every job id of a batch, in product order."""
    return [_text(j) for j in client.lrange(_key(batch_id, "jobs"), 0, -1)]
