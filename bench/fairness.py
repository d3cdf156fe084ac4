"""Benchmark 6, fairness between stores: one store's catalog run, then another store's small jobs.

Store A posts a 3,000-product catalog-copy batch (as the API does: `Batches.submit_catalog_copy`)
against a dev gateway that answers every call after 2 s; right after, store B asks for a theme
build and 5 single products. The Procfile's `worker` runs it, twice on fresh servers: first in
first out (`FAIR_DISPATCH=false`, the batch lane before issue 17), then with the fair lane (the
default). Measured from job statuses: how long B's jobs waited to start, beside how long A's
backlog took to start and to finish. Target: B's jobs start within 5 s with the fair lane.

`python -m bench.fairness [--count N] [--latency-ms MS] [--quick]`
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from bench.catalog import sample, variant
from bench.client import Client
from bench.env import BenchEnv
from bench.report import Section, fmt, load_note, quiet_driver_logs
from bench.runs import progress_bar, warm_up

TITLE = "6. Fairness between stores: a 3,000-product catalog, then another store's theme build and 5 products"
STORE_A, STORE_B = "stanley1913", "electricshop"
BRIEF_B = {"description": "A clean, trustworthy electronics shop: specs up front, no gimmicks."}
SINGLES = 5
TARGET_S = 5.0
_FIELDS = ("status", "created_at", "started_at", "finished_at")


@dataclass
class Run:
    """One scenario's job timings (seconds since epoch) and outcome."""

    mode: str
    submitted_at: float
    submit_s: float
    a: list[dict[str, Any]]
    theme: dict[str, Any]
    singles: list[dict[str, Any]]
    window: int | None

    def wait(self, job: dict[str, Any]) -> float:
        return float(job["started_at"]) - float(job["created_at"])

    @property
    def b_waits(self) -> list[float]:
        return [self.wait(self.theme), *(self.wait(j) for j in self.singles)]

    @property
    def b_done_s(self) -> float:
        """From B's first submission until its last job ended."""
        b = [self.theme, *self.singles]
        return max(float(j["finished_at"]) for j in b) - min(float(j["created_at"]) for j in b)

    @property
    def a_backlog_s(self) -> float:
        """From A's submission until its last job started."""
        return max(float(j["started_at"]) for j in self.a) - self.submitted_at

    @property
    def a_done_s(self) -> float:
        return max(float(j["finished_at"]) for j in self.a) - self.submitted_at

    @property
    def failed(self) -> int:
        return sum(1 for j in [*self.a, self.theme, *self.singles] if j.get("status") != "done")


def _statuses(client: Client, ids: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), 1000):
        pipe = client.redis.pipeline(transaction=False)
        for job in ids[start : start + 1000]:
            pipe.hmget(f"wandstore:job:{job}", list(_FIELDS))
        for values in pipe.execute():
            out.append({k: (v.decode() if v else None) for k, v in zip(_FIELDS, values, strict=True)})
    return out


def _wait_all(client: Client, ids: list[str], timeout_s: float, label: str, progress: bool) -> None:
    deadline = time.monotonic() + timeout_s
    with progress_bar(label, len(ids), progress) as advance:
        while True:
            ended = sum(1 for s in _statuses(client, ids) if s["status"] in ("done", "failed", "lost"))
            advance(ended)
            if ended == len(ids):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids) - ended} of {len(ids)} jobs unfinished after {timeout_s:.0f}s")
            time.sleep(0.5)


def scenario(fair: bool, count: int, latency_ms: int, *, progress: bool) -> Run:
    """A's catalog, then B's theme build and singles, on fresh servers and a fresh worker."""
    from dramatiq.brokers.redis import RedisBroker

    from adapters.store import LocalStore
    from pipelines.batches import Batches
    from pipelines.catalog_snapshot import write_snapshot
    from pipelines.fair import FairQueue
    from pipelines.fair_dispatch import FairConfig, FairDispatch
    from pipelines.submit import submit_product_copy, submit_theme_build

    mode = "fair" if fair else "fifo"
    with BenchEnv(latency_ms=0) as env:
        client = Client(env.redis_url)
        try:
            objects = LocalStore(env.objects_dir)
            write_snapshot(objects, STORE_B, {"products": list(sample(STORE_B))})
            extra = {"FAIR_DISPATCH": "true" if fair else "false", "DAILY_BUDGET_USD": "100000"}
            worker = env.start_worker("worker", extra_env=extra)
            warm_up(env, client, worker)
            env.gateway_config(latency_ms=latency_ms)
            # Submitted as the API submits: through a broker that knows the fair lane.
            broker = RedisBroker(url=env.redis_url, middleware=[FairDispatch(client.redis, FairConfig())])
            lane = FairQueue(client.redis)
            deadline = time.monotonic() + 30
            while fair and lane.depth().window is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("the worker's dispatcher never announced itself")
                time.sleep(0.05)
            base = sample(STORE_A)
            products = [variant(base[n % len(base)], n) for n in range(count)]
            submitted_at = time.time()
            batch = Batches(broker, client.status).submit_catalog_copy(STORE_A, products)
            submit_s = time.time() - submitted_at
            a_ids = [j.decode() for j in client.redis.lrange(f"wandstore:batch:{batch.id}:jobs", 0, -1)]
            theme = submit_theme_build(broker, client.status, STORE_B, BRIEF_B, objects=objects)
            singles_b = sample(STORE_B)
            singles = [
                submit_product_copy(broker, client.status, STORE_B, variant(singles_b[n], 10**6 + n))
                for n in range(SINGLES)
            ]
            window = lane.depth().window
            ids = [*a_ids, theme, *singles]
            _wait_all(client, ids, 900, f"{mode}: A's catalog, B's theme build and products", progress)
            rows = _statuses(client, ids)
            broker.close()
        finally:
            client.close()
    n = len(a_ids)
    return Run(mode, submitted_at, submit_s, rows[:n], rows[n], rows[n + 1 :], window)


def run(count: int = 3000, latency_ms: int = 2000, *, quick: bool = False, progress: bool = True) -> Section:
    fifo = scenario(False, count, latency_ms, progress=progress)
    fair = scenario(True, count, latency_ms, progress=progress)

    def row(label: str, value: Any, digits: int = 1) -> list[str]:
        return [label, *(fmt(value(r), digits) for r in (fifo, fair))]

    rows = [
        row("B's theme build: start wait (s)", lambda r: r.wait(r.theme)),
        row(f"B's {SINGLES} products: longest start wait (s)", lambda r: max(r.b_waits[1:])),
        row(f"B's {SINGLES} products: shortest start wait (s)", lambda r: min(r.b_waits[1:])),
        row("B's 6 jobs: submission to the last one's end (s)", lambda r: r.b_done_s),
        row("A's backlog: submission to its last job's start (s)", lambda r: r.a_backlog_s),
        row("A's catalog: submission to its last job's end (s)", lambda r: r.a_done_s),
        row("A's catalog: products / s", lambda r: count / r.a_done_s),
        row(f"A's submission of {count:,} jobs (s)", lambda r: r.submit_s, 2),
        row("B's longest start wait / A's backlog (%)", lambda r: 100 * max(r.b_waits) / r.a_backlog_s, 0),
    ]
    worst = max(fair.b_waits)
    notes = [
        f"store A ({STORE_A}) posts a {count:,}-product catalog batch; then store B ({STORE_B}) a theme "
        f"build and {SINGLES} single products; every model call answered after {latency_ms} ms; the "
        "Procfile's worker (2 processes x 128 threads).",
        f"first in, first out: FAIR_DISPATCH=false; fair: the defaults (FAIR_WINDOW={fair.window}).",
        f"jobs not done: {fifo.failed} (first in, first out), {fair.failed} (fair).",
        load_note(),
    ]
    return Section(
        title=TITLE,
        command="python -m bench.fairness" + (" --quick" if quick else ""),
        columns=["measure", "first in, first out", "fair lane"],
        rows=rows,
        notes=notes,
        verdicts=[
            (f"B's jobs start within {TARGET_S:.0f} s, fair lane ({fmt(worst, 1)} s)", worst < TARGET_S),
            ("every job done", fifo.failed == 0 and fair.failed == 0),
        ],
    )


def main(argv: list[str] | None = None) -> Section:
    parser = argparse.ArgumentParser(prog="python -m bench.fairness", description=__doc__)
    parser.add_argument("--count", type=int, default=3000, help="store A's catalog size")
    parser.add_argument("--latency-ms", type=int, default=2000, help="every model call's latency")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 products at 500 ms")
    args = parser.parse_args(argv)
    quiet_driver_logs()
    count, latency = (300, 500) if args.quick else (args.count, args.latency_ms)
    section = run(count, latency, quick=args.quick)
    section.print()
    return section


if __name__ == "__main__":
    main()
