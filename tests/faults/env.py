"""A private world for fault scenarios: our own Redis, dev gateway and worker process, and what to check."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from adapters.store import LocalStore, ObjectStore
from pipelines.status import JobStatus
from tests.faults.worker import WorkerProcess, wait_until
from tests.fixtures.gateway import DevGateway
from tests.fixtures.redis import RedisProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = ("done", "failed", "lost")  # lost: reported so by pipelines/lost_jobs.py

# Recognizable fake secrets: every fault-suite worker runs with them, and test_zz_secrets
# looks for them (and for telling fragments of them) in everything the suite produced.
FAKE_SECRETS = {
    "AI_GATEWAY_TOKEN": "cfaig-FAKESECRET-gw-7d41e0c2b9a8",
    "OPENAI_API_KEY": "sk-FAKESECRET-openai-5c2e9f13aa77",
    "ANTHROPIC_API_KEY": "sk-ant-FAKESECRET-anthropic-a8b7c6d5",
    "OPS_API_TOKEN": "ops-FAKESECRET-2f4e6a8c1d3b",
}
FAKE_R2 = {
    "R2_ACCESS_KEY_ID": "FAKESECRETR2KEYID4E1F",
    "R2_SECRET_ACCESS_KEY": "FAKESECRET-r2-secret-9b8a7c6d5e4f3a2b",
}


def sample_products(store: str) -> list[dict[str, Any]]:
    path = ROOT / "data" / "shopify" / f"{store}.products.json"
    return list(json.loads(path.read_text())["products"])


_BASES: list[tuple[str, dict[str, Any]]] = []


def unique_product(tag: str, index: int) -> tuple[str, dict[str, Any]]:
    """A real product under a new id whose title carries `tag` (a gateway fault can `match` it)."""
    if not _BASES:
        for store in ("stanley1913", "electricshop", "kiids-kingdom"):
            _BASES.extend((store, p) for p in sample_products(store)[:6])
    store, base = _BASES[index % len(_BASES)]
    product = {**base, "id": f"{base['id']}{tag}", "title": f"{base['title']} {tag}"}
    return store, product


@dataclass
class Outcome:
    """How the accepted jobs of one run ended."""

    infos: dict[str, dict[str, Any]]
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # failed with a reason
    lost: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, infos: dict[str, dict[str, Any] | None]) -> Outcome:
        out = cls({k: dict(v or {}) for k, v in infos.items()})
        for job, info in out.infos.items():
            state = info.get("status")
            if state == "done":
                out.completed.append(job)
            elif state == "failed" and str(info.get("error") or "").strip():
                out.failed.append(job)
            else:
                out.lost.append(job)
        return out


class FaultEnv:
    """Our own valkey-server (AOF), dev gateway process, object folder and worker process.

    The worker runs the production defaults except `settings` (environment names and values),
    which every scenario run in this world names in its row of docs/reliability.md. `extra_env`
    only wires the worker to this world's servers (endpoints, buckets, credentials).
    """

    def __init__(
        self,
        root: Path,
        gateway: DevGateway,
        *,
        settings: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        reader: ObjectStore | None = None,
    ) -> None:
        self.settings = dict(settings or {})
        self.root = root
        self.redis_server = RedisProcess(data_dir=root / "redis")
        self.redis_server.start()
        self.gateway = gateway
        self.objects_dir = root / "objects"
        # How the test reads what the worker published (the worker's store, not through any fault).
        self.reader: ObjectStore = reader or LocalStore(self.objects_dir)
        self.metrics_port = free_port()
        self.client = redis.Redis.from_url(self.redis_server.url)
        # A plain Dramatiq client on our Redis, as any other program would enqueue.
        self.broker = RedisBroker(url=self.redis_server.url, middleware=[])
        self.status = JobStatus(self.client)
        env = {
            "REDIS_URL": self.redis_server.url,
            "AI_GATEWAY_URL": gateway.base_url,
            "LOCAL_STORE_DIR": str(self.objects_dir),
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
            "METRICS_PORT": str(self.metrics_port),
            **FAKE_SECRETS,
            **(extra_env or {}),
            **self.settings,
        }
        self.worker = WorkerProcess(env=env, log_path=root / "worker.log")

    # --- lifecycle -------------------------------------------------------------

    def start_worker(self) -> None:
        if not self.worker.running:
            self.worker.start()

    def reset(self) -> None:
        """A clean slate between scenarios: no jobs, no ledger, no objects, no gateway faults."""
        self.gateway.reset()
        self.client.flushdb()
        shutil.rmtree(self.objects_dir, ignore_errors=True)
        for key in list(self.reader.list("")):
            self.reader.delete(key)

    def close(self) -> None:
        self.worker.kill()  # nothing left to finish; a graceful stop waits for idle threads
        self.client.close()
        self.broker.close()
        self.redis_server.stop()

    # --- sending ---------------------------------------------------------------

    def submit_copy(self, store: str, product: dict[str, Any], options: dict[str, Any] | None = None) -> str:
        """Accept a product_copy job the way the CLI and API do: validate, record queued, enqueue."""
        from pipelines.submit import submit_product_copy

        return submit_product_copy(self.broker, self.status, store, product, options)

    def send_raw(self, actor: str, queue: str, *args: Any, **kwargs: Any) -> str:
        """Enqueue without validation, as a foreign client might; returns the message id."""
        message: Message[Any] = Message(
            queue_name=queue, actor_name=actor, args=args, kwargs=kwargs, options={}
        )
        self.broker.enqueue(message)
        return message.message_id

    # --- observing -------------------------------------------------------------

    def wait_terminal(self, jobs: list[str], timeout_s: float) -> Outcome:
        """Poll until every job is done or failed; whatever is neither at the deadline is lost."""
        deadline = time.monotonic() + timeout_s
        infos: dict[str, dict[str, Any] | None] = {}
        while True:
            try:
                infos = {j: self.status.get(j) for j in jobs}
            except Exception:  # Redis restarting: poll again
                infos = infos or dict.fromkeys(jobs)
            if all(i and i.get("status") in TERMINAL for i in infos.values()) or time.monotonic() > deadline:
                return Outcome.of(infos)
            time.sleep(0.05)

    def wait_gateway_requests(self, at_least: int, timeout_s: float = 30.0) -> None:
        wait_until(
            lambda: self.gateway.stats()["requests"] >= at_least, timeout_s, f"{at_least} gateway requests"
        )

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every published object, key -> body."""
        return {key: self.reader.get(key).body for key in self.reader.list(prefix)}

    def ledger(self) -> Counter[str]:
        """Ledger counters summed over stores, days and keys: calls, prompt_tokens, cost_nano, ..."""
        totals: Counter[str] = Counter()
        for key in self.client.scan_iter(match="wandstore:ledger:*", count=1000):
            name = key.decode()
            if name.startswith(("wandstore:ledger:seen:", "wandstore:ledger:days")):
                continue
            for fld, value in self.client.hgetall(key).items():
                totals[fld.decode().rsplit("|", 1)[-1]] += int(value)
        return totals

    def counted_records(self) -> list[tuple[str, str, str]]:
        """(job, attempt, call) of every record the ledger counted (its idempotency markers)."""
        out = []
        for key in self.client.scan_iter(match="wandstore:ledger:seen:*", count=1000):
            job, attempt, call = key.decode()[len("wandstore:ledger:seen:") :].split(":", 2)
            out.append((job, attempt, call))
        return out

    def job_log(self, job: str) -> list[str]:
        """The worker's log lines that mention `job` (for failure messages)."""
        return [
            line[:400]
            for line in self.worker.output().splitlines()
            if job in line and "usage_recorded" not in line
        ]

    def wait_log_events(
        self, event: str, jobs: set[str], count: int, timeout_s: float = 15
    ) -> list[dict[str, Any]]:
        """The worker's `event` lines about `jobs`, once at least `count` arrived (through its parent)."""
        found: list[dict[str, Any]] = []

        def arrived() -> bool:
            found[:] = [e for e in self.log_events(event) if e.get("job_id") in jobs]
            return len(found) >= count

        wait_until(arrived, timeout_s, f"{count} {event} log lines")
        return found

    def broken_log_lines(self) -> list[str]:
        """JSON log lines of the worker that do not parse (merged or cut by concurrent writers)."""
        broken = []
        for line in self.worker.output().splitlines():
            if line.lstrip().startswith("{"):
                try:
                    json.loads(line)
                except ValueError:
                    broken.append(line[:200])
        return broken

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The worker's JSON log lines with this `event`."""
        out = []
        for line in self.worker.output().splitlines():
            if f'"event": "{event}"' in line:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out


def copy_duplicates(env: FaultEnv, jobs: dict[str, tuple[str, str]], outcome: Outcome) -> list[str]:
    """Problems that would mean a job published twice or half, or a call counted twice.

    `jobs`: job id -> (store, product id). Checks: each completed job has exactly its one
    output, written by that job; no other object exists; the ledger holds each (job, call)
    once per attempt and never more calls or tokens than the gateway served fresh.
    """
    problems = []
    objects = {k: v for k, v in env.objects("stores/").items() if "/products/" in k}
    expected = {f"stores/{s}/products/{p}/copy.json": j for j, (s, p) in jobs.items()}
    for key in sorted(set(objects) - set(expected)):
        problems.append(f"unexpected object {key}")
    for job in (j for j in outcome.completed if j in jobs):
        store, pid = jobs[job]
        key = f"stores/{store}/products/{pid}/copy.json"
        if key not in objects:
            problems.append(f"{job}: done but {key} is missing")
            continue
        doc = json.loads(objects[key])
        if doc.get("meta", {}).get("job_id") != job:
            problems.append(f"{key} was written by {doc.get('meta', {}).get('job_id')}, not {job}")
    for job in (j for j in outcome.failed if j in jobs):
        store, pid = jobs[job]
        if f"stores/{store}/products/{pid}/copy.json" in objects:
            problems.append(f"{job}: failed but its copy was published")
    counted = Counter((j, a, c) for j, a, c in env.counted_records())
    problems += [f"record {k} counted {n} times" for k, n in counted.items() if n > 1]
    ledger, stats = env.ledger(), env.gateway.stats()
    fresh_calls = ledger["calls"] - ledger["gateway_cache_hits"]
    if fresh_calls > stats["model_calls"]:
        problems.append(
            f"ledger counts {fresh_calls} fresh calls, the gateway answered {stats['model_calls']}"
        )
    for metric, served in (("prompt_tokens", "prompt_tokens"), ("completion_tokens", "completion_tokens")):
        if ledger[metric] > stats[served]:
            problems.append(f"ledger {metric} {ledger[metric]} > gateway's {stats[served]}")
    return problems


def approve_builds(env: FaultEnv, objects: ObjectStore, builds: dict[str, str]) -> None:
    """A merchant approves each finished build's draft (a store's themes wait for review)."""
    from domain.drafts import draft_id_for
    from pipelines.drafts_review import approve

    for build_id, store in builds.items():
        approve(env.client, objects, store, draft_id_for(store, "theme", build_id), by="merchant")


def log_time(event: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()
