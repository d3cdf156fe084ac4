"""Benchmark: shopper personalization on the interactive lane, while a catalog copy runs.

    python -m bench.personalization            # the issue's run (2,000 requests, 2,000-product copy)
    python -m bench.personalization --quick    # a smaller run (~1 minute)

Everything runs as in production, on this machine: a valkey-server, the dev gateway in its
own process answering after `--latency-ms`, and the two worker processes started from the
Procfile's own `worker` and `interactive` lines. A store's catalog snapshot of `--catalog`
products is written from the sample Shopify exports; `--requests` personalization requests
from `--shoppers` shoppers in ~`--cohorts` cohorts are sent at a steady `--rate`, first
alone, then while a copy of the whole catalog runs on the batch worker.

Latency is enqueue (job status `created_at`) to published (`published_at`, taken right
after the document was written). Beside it, the floor: the same stream at the same rate,
under the same conditions (its own catalog copy in the loaded phase), with the gateway's
latency alone: each cohort's first request is one bare call with the exact prompt the
pipeline sends, so the gateway sees the same burst; a hit's floor is zero. Targets: p95
within 50 ms of the floor on a miss, under 20 ms on a hit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import pct

ROOT = Path(__file__).resolve().parents[1]
STORE = "bench-store"
SAMPLE_STORES = ("stanley1913", "electricshop", "kiids-kingdom")
SEGMENTS = ("new", "returning", "vip")
LOCALES = ("en", "en-gb", "fr")
DEVICES = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0)", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
REFERRERS = (None, "https://www.google.com/search?q=gift", "https://www.instagram.com/")
MISS_MARGIN_MS = 50.0
HIT_TARGET_MS = 20.0


@dataclass
class Config:
    requests: int = 2000
    shoppers: int = 20_000
    cohorts: int = 50
    rate: float = 100.0
    latency_ms: int = 300
    catalog: int = 2000
    baseline_requests: int = 500
    seed: int = 7
    batch_nice: int = 0  # run the batch worker under `nice -n N` (0: as the Procfile says)
    interactive_processes: int = 0  # interactive processes, same threads in all (0: the Procfile's)


QUICK = Config(requests=400, cohorts=20, catalog=400, baseline_requests=150)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes ------------------------------------------------------------------------------


def procfile_command(name: str) -> list[str]:
    """The Procfile's command for process `name`, with `dramatiq` from this virtualenv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            args = shlex.split(command)
            if args and args[0] == "env":  # `env VAR=value ... cmd`
                args = args[1:]
                while args and "=" in args[0]:
                    args = args[1:]
            if args and args[0] == "dramatiq":
                args[0] = str(Path(sys.executable).with_name("dramatiq"))
            return args
    raise SystemExit(f"Procfile has no {name!r} process")


class Processes:
    """The servers and workers this benchmark starts (and only those), stopped on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen[bytes]] = []
        self.names: dict[int, str] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.started.append(proc)
        self.names[proc.pid] = name
        return proc

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) used so far by each started process and its children, and this one."""
        import psutil

        out: dict[str, float] = {"driver (this process)": sum(psutil.Process().cpu_times()[:2])}
        for proc in self.started:
            try:
                root = psutil.Process(proc.pid)
                total = 0.0
                for p in [root, *root.children(recursive=True)]:
                    total += sum(p.cpu_times()[:2])
            except psutil.Error:
                continue
            name = self.names[proc.pid]
            out[name] = out.get(name, 0.0) + total
        return out

    def stop(self) -> None:
        for proc in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # its own group: a dramatiq main and its worker
        deadline = time.monotonic() + 10
        for proc in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def wait_until(check: Any, what: str, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- data -----------------------------------------------------------------------------------


def catalog_products(n: int) -> list[dict[str, Any]]:
    """`n` products cloned from the sample stores' real exports, each with its own id and title."""
    base: list[dict[str, Any]] = []
    for store in SAMPLE_STORES:
        base += json.loads((ROOT / "data" / "shopify" / f"{store}.products.json").read_text())["products"]
    out = []
    for i in range(n):
        product = dict(base[i % len(base)])
        edition = i // len(base)
        product["id"] = f"{product['id']}e{edition}"
        product["title"] = f"{product['title']} (edition {edition})" if edition else product["title"]
        out.append(product)
    return out


@dataclass(frozen=True)
class Template:
    segment: str
    locale: str
    device: str
    referrer: str | None
    categories: tuple[str, ...]
    cart: bool


def cohort_templates(by_category: dict[str, list[str]], n: int, rng: random.Random) -> list[Template]:
    """`n` distinct cohorts over the catalog's larger categories."""
    categories = sorted(c for c, ids in by_category.items() if c and len(ids) >= 8)
    out: dict[Template, None] = {}
    while len(out) < n:
        picked = tuple(sorted(rng.sample(categories, rng.choice((1, 2)))))
        t = Template(
            rng.choice(SEGMENTS),
            rng.choice(LOCALES),
            rng.choice(DEVICES),
            rng.choice(REFERRERS),
            picked,
            rng.random() < 0.3,
        )
        out[t] = None
    return list(out)


def shopper_context(
    template: Template, by_category: dict[str, list[str]], rng: random.Random
) -> dict[str, Any]:
    """A shopper of `template`: their own recently viewed products, from the cohort's categories."""
    viewed: list[str] = []
    for category in template.categories:
        viewed += rng.sample(by_category[category], rng.randint(1, 3))
    rng.shuffle(viewed)
    context: dict[str, Any] = {
        "segment": template.segment,
        "locale": template.locale,
        "device": template.device,
        "viewed": viewed,
        "deadline_ms": 5000,
    }
    if template.referrer:
        context["referrer"] = template.referrer
    if template.cart:
        context["carted"] = [viewed[-1]]
    return context


# --- one phase --------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    floor_ms: list[float] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    sent_s: float = 0.0
    copy_done_when_stream_ended: int | None = None
    copy_total: int = 0
    copy_finished_s: float | None = None
    floor_copy_done: int | None = None
    cpu_share: dict[str, float] = field(default_factory=dict)  # cores used while the stream ran

    def latencies(self, cache: str) -> list[float]:
        return [j["latency_ms"] for j in self.jobs if j.get("cohort_cache") == cache]

    def pickups(self) -> list[float]:
        return [j["pickup_ms"] for j in self.jobs if "pickup_ms" in j]


async def gateway_alone(
    stream: list[tuple[str, dict[str, Any]]], rate: float, body_for: Any, url: str
) -> list[float]:
    """The same stream with the gateway's latency alone: the floor.

    Sent at the same steady rate, each cohort's first request is one bare gateway call with
    the exact prompt the pipeline would send (so the gateway sees the same burst of distinct
    requests); every other request would be served without the gateway, at no cost.
    """
    import httpx

    headers = {
        "content-type": "application/json",
        "authorization": "Bearer bench",
        "cf-aig-skip-cache": "true",
    }
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one(body: dict[str, Any]) -> float:
            started = time.perf_counter()
            response = await client.post(url, json=body, headers=headers)
            response.raise_for_status()
            return (time.perf_counter() - started) * 1000

        start = loop.time()
        calls = []
        for i, (_, context) in enumerate(stream):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            body = body_for(context)
            if body is not None:
                calls.append(asyncio.ensure_future(one(body)))
        return list(await asyncio.gather(*calls))


async def send_stream(
    requests: list[tuple[str, dict[str, Any]]], rate: float, submit: Any
) -> tuple[list[str], float]:
    """Submit each request at its slot of a steady rate; returns the job ids and the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    jobs = []
    for i, (shopper, context) in enumerate(requests):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        jobs.append(submit(shopper, context))
    return jobs, loop.time() - start


def collect(status: Any, job_ids: list[str], timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """Every job's status once all are finished, with its latency and pick-up time."""
    deadline = time.monotonic() + timeout_s
    pending = set(job_ids)
    infos: dict[str, dict[str, Any]] = {}
    while pending and time.monotonic() < deadline:
        for job in list(pending):
            info = status.get(job)
            if info and info.get("status") in ("done", "failed"):
                infos[job] = info
                pending.discard(job)
        if pending:
            time.sleep(0.1)
    out = []
    for job in job_ids:
        info = infos.get(job) or {"id": job, "status": "timed out"}
        if info.get("status") == "done":
            # Published: the moment the document was written (the job's bookkeeping comes after).
            published = float(info.get("published_at") or info["finished_at"])
            info["latency_ms"] = (published - info["created_at"]) * 1000
            info["pickup_ms"] = (info["started_at"] - info["created_at"]) * 1000
        out.append(info)
    return out


# --- the run ----------------------------------------------------------------------------------


def run(cfg: Config, *, log_dir: Path) -> dict[str, Any]:
    procs = Processes(log_dir)
    load_before = os.getloadavg()[0]
    try:
        result = _run(cfg, procs, log_dir)
    finally:
        procs.stop()
    # Other work on the machine stretches every tail: say how busy it was.
    result["load_average"] = {"before": round(load_before, 1), "after": round(os.getloadavg()[0], 1)}
    result["cpus"] = os.cpu_count()
    return result


def _run(cfg: Config, procs: Processes, root: Path) -> dict[str, Any]:
    from adapters.redis_conn import valkey_binary

    redis_port, gateway_port = free_port(), free_port()
    procs.start(
        "valkey",
        [
            valkey_binary(),
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--dir",
            str(root),
        ],
        dict(os.environ),
    )
    gateway_args = [sys.executable, "-m", "devgateway", "--port", str(gateway_port)]
    procs.start("devgateway", [*gateway_args, "--latency-ms", str(cfg.latency_ms)], dict(os.environ))
    gateway_root = f"http://127.0.0.1:{gateway_port}"
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("R2_", "AI_GATEWAY", "CF_", "REDIS_URL"))
        },
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AI_GATEWAY_URL": f"{gateway_root}/v1/dev/wandstore-ai",
        "LOCAL_STORE_DIR": str(root / "objects"),
        "LOG_LEVEL": "WARNING",
        "DAILY_BUDGET_USD": "1000",
    }
    # This process is the storefront and the merchant: it enqueues like the API would.
    for name in [k for k in os.environ if k not in env]:
        if name.startswith(("R2_", "AI_GATEWAY", "CF_")):
            del os.environ[name]
    os.environ.update(env)

    import httpx
    import redis

    client = redis.Redis.from_url(env["REDIS_URL"])
    wait_until(lambda: _answers(lambda: client.ping()), "valkey")
    wait_until(
        lambda: _answers(lambda: httpx.get(gateway_root + "/_dev/health").raise_for_status()), "gateway"
    )

    from adapters.logs import configure_logging

    configure_logging("WARNING", "json")  # stdout is the report's
    from adapters.costs import cost_report
    from adapters.ledger import Ledger
    from adapters.store import LocalStore
    from agents.gateway import response_format_for
    from agents.personalizer import PersonalizerAgent
    from agents.schemas.personalization import Personalization
    from entrypoints import compose

    broker = compose.process_broker()
    from entrypoints import compose
    from pipelines.catalog_snapshot import parse_snapshot, write_snapshot
    from pipelines.cohorts import cohort_of, parse_context, shortlist
    from pipelines.status import JobStatus
    from pipelines.submit import submit_personalize, submit_product_copy

    objects = LocalStore(root / "objects")
    status = JobStatus(client)
    products = catalog_products(cfg.catalog)
    write_snapshot(objects, STORE, {"products": products})
    catalog = parse_snapshot(objects.get(f"stores/{STORE}/catalog.json").json())
    by_category: dict[str, list[str]] = {}
    for p in catalog.products:
        by_category.setdefault(p.category, []).append(p.id)

    # The two worker processes, exactly as the Procfile starts them.
    for name in ("interactive", "worker"):
        before = set(client.zrange("dramatiq:__heartbeats__", 0, -1))
        command = procfile_command(name)
        if name == "worker" and cfg.batch_nice:
            command = ["nice", "-n", str(cfg.batch_nice), *command]
        if name == "interactive" and cfg.interactive_processes:
            threads = int(command[command.index("--threads") + 1])
            processes = int(command[command.index("--processes") + 1])
            command[command.index("--processes") + 1] = str(cfg.interactive_processes)
            command[command.index("--threads") + 1] = str(threads * processes // cfg.interactive_processes)
        procs.start(name, command, env)
        count = int(command[command.index("--processes") + 1])
        wait_until(
            lambda b=before, n=count: len(set(client.zrange("dramatiq:__heartbeats__", 0, -1)) - b) >= n,
            f"{name} worker",
        )
    # Consumers poll before their process has warmed up: a few jobs through the lane first,
    # which also read the store's snapshot once per process, as a lane serving the store has.
    # One at a time, so that each process is likely to get some (8 in a row: 99%).
    for n in range(8):
        job = submit_personalize(broker, status, STORE, f"w{n}", {"segment": "warm-up"})
        wait_until(lambda j=job: (status.get(j) or {}).get("status") == "done", "interactive warm-up")
    # And the batch worker: otherwise its cold start lands in the first measured copy only.
    copies = [submit_product_copy(broker, status, "warm-up", p) for p in products[:20]]
    wait_until(lambda: all((status.get(j) or {}).get("status") == "done" for j in copies), "batch warm-up")

    rng = random.Random(cfg.seed)
    templates = cohort_templates(by_category, cfg.cohorts, rng)
    shopper_template = [templates[i % len(templates)] for i in range(cfg.shoppers)]
    rng.shuffle(shopper_template)

    def requests(n: int) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for _ in range(n):
            i = rng.randrange(cfg.shoppers)
            out.append((f"shopper-{i:05d}", shopper_context(shopper_template[i], by_category, rng)))
        return out

    # The floor's requests: for a cohort's first shopper, the prompt the pipeline would send.
    svc = compose.services()
    agent = PersonalizerAgent(svc.runtime)
    prompt = svc.runtime.prompts.get("personalizer")
    floor_url = f"{gateway_root}/v1/dev/wandstore-ai/openai/chat/completions"

    def floor_body(seen: set[Any]) -> Any:
        def body_for(context: dict[str, Any]) -> dict[str, Any] | None:
            cohort = cohort_of(parse_context(context), catalog)
            if cohort in seen:
                return None
            seen.add(cohort)
            rows = [c.prompt_row for c in shortlist(catalog, cohort)]
            return {
                "model": prompt.meta.model.split("/", 1)[1],
                "messages": prompt.render(agent.variables(cohort.signals(), rows)),
                "response_format": response_format_for(Personalization),
                "temperature": prompt.meta.temperature,
                "max_tokens": prompt.meta.max_tokens,
            }

        return body_for

    def submit(shopper: str, context: dict[str, Any]) -> str:
        return submit_personalize(broker, status, STORE, shopper, context)

    def fresh_start() -> None:
        """Cold caches for a phase: no cohort generations, nothing in the gateway's cache."""
        for key in client.scan_iter("wandstore:rc*"):
            client.delete(key)
        httpx.post(gateway_root + "/_dev/reset").raise_for_status()
        httpx.post(gateway_root + "/_dev/config", json={"latency_ms": cfg.latency_ms}).raise_for_status()

    def start_copy(store: str) -> list[str]:
        return [submit_product_copy(broker, status, store, p) for p in products]

    async def copy_finished(jobs: list[str]) -> float | None:
        infos = await asyncio.to_thread(collect, status, jobs, 900.0)
        done = [i["finished_at"] for i in infos if i.get("status") == "done"]
        started = min(i["created_at"] for i in infos if "created_at" in i)
        return (max(done) - started) if done else None

    def done_count(jobs: list[str]) -> int:
        return sum(1 for j in jobs if (status.get(j) or {}).get("status") == "done")

    async def phase(name: str, n: int, copy: bool) -> Phase:
        result = Phase(name)
        stream = requests(n)
        # The floor first: the same stream, under the same conditions, with the gateway alone.
        fresh_start()
        floor_copy = start_copy(f"{STORE}-floor") if copy else []
        result.floor_ms = await gateway_alone(stream, cfg.rate, floor_body(set()), floor_url)
        if copy:
            result.floor_copy_done = done_count(floor_copy)
            await copy_finished(floor_copy)
        # Then the run itself, from cold caches, with a copy of its own.
        fresh_start()
        copy_jobs = start_copy(STORE) if copy else []
        result.copy_total = len(copy_jobs)
        cpu_before = procs.cpu_seconds()
        job_ids, result.sent_s = await send_stream(stream, cfg.rate, submit)
        cpu_after = procs.cpu_seconds()
        result.cpu_share = {
            k: round((cpu_after[k] - cpu_before.get(k, 0.0)) / result.sent_s, 2) for k in cpu_after
        }
        if copy:
            result.copy_done_when_stream_ended = done_count(copy_jobs)
        result.jobs = await asyncio.to_thread(collect, status, job_ids)
        if copy:
            result.copy_finished_s = await copy_finished(copy_jobs)
        return result

    async def both() -> list[Phase]:
        alone = await phase("alone", cfg.baseline_requests, copy=False)
        loaded = await phase("with catalog copy", cfg.requests, copy=True)
        return [alone, loaded]

    phases = asyncio.run(both())
    report = cost_report(Ledger(client), store=STORE, by=("pipeline",))
    ledger_row = next((r for r in report["rows"] if r["pipeline"] == "personalization"), {})
    stats = httpx.get(gateway_root + "/_dev/stats").json()
    return summarize(cfg, phases, ledger_row, stats)


def _answers(call: Any) -> bool:
    try:
        call()
    except Exception:
        return False
    return True


def summarize(
    cfg: Config, phases: list[Phase], ledger_row: dict[str, Any], stats: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"config": cfg.__dict__, "phases": []}
    for ph in phases:
        served = Counter(j.get("cohort_cache", j.get("status")) for j in ph.jobs)
        floor = {q: pct(ph.floor_ms, q) for q in (50, 95, 99)}
        row: dict[str, Any] = {
            "phase": ph.name,
            "requests": len(ph.jobs),
            "rate_per_s": round(len(ph.jobs) / ph.sent_s, 1) if ph.sent_s else None,
            "floor_ms": floor,
            "floor_samples": len(ph.floor_ms),
            "by_cache": {},
            "pickup_ms": {q: pct(ph.pickups(), q) for q in (50, 95, 99)},
            "served": dict(served),
            "cohorts_seen": len({j.get("store", "") + str(j.get("cohort", "")) for j in ph.jobs}),
            "model_calls": sum(1 for j in ph.jobs if j.get("cohort_cache") == "miss"),
            "cohort_hit_ratio": round(
                (served["hit"] + served["joined"])
                / max(1, served["hit"] + served["joined"] + served["miss"]),
                4,
            ),
        }
        for cache in ("miss", "hit", "joined", "fallback"):
            values = ph.latencies(cache)
            if values:
                row["by_cache"][cache] = {"n": len(values), **{q: pct(values, q) for q in (50, 95, 99)}}
        row["cores_used_while_sending"] = ph.cpu_share
        first = min((j["created_at"] for j in ph.jobs if "created_at" in j), default=0.0)
        row["timeline"] = [
            [round(j["created_at"] - first, 3), round(j["latency_ms"], 1), j.get("cohort_cache")]
            for j in ph.jobs
            if "latency_ms" in j
        ]
        if ph.copy_total:
            row["catalog_copy"] = {
                "products": ph.copy_total,
                "floor_run_copy_done_when_stream_ended": ph.floor_copy_done,
                "done_when_stream_ended": ph.copy_done_when_stream_ended,
                "finished_after_s": round(ph.copy_finished_s, 1) if ph.copy_finished_s else None,
            }
        miss, hit = row["by_cache"].get("miss"), row["by_cache"].get("hit")
        row["targets"] = {
            "miss_p95_within_50ms_of_floor": bool(miss) and miss[95] <= floor[95] + MISS_MARGIN_MS,
            "hit_p95_under_20ms": bool(hit) and hit[95] < HIT_TARGET_MS,
        }
        out["phases"].append(row)
    calls, hits = int(ledger_row.get("calls", 0)), int(ledger_row.get("result_cache_hits", 0))
    out["ledger"] = {
        "personalize_model_calls": calls,
        "personalize_result_cache_hits": hits,
        "cohort_hit_ratio": round(hits / (hits + calls), 4) if hits + calls else None,
    }
    out["gateway_calls_by_model"] = stats.get("by_model", {})
    return out


def table(result: dict[str, Any]) -> str:
    """The results as a Markdown table (what README and bench/RESULTS.md show)."""
    cfg = result["config"]
    lines = [
        f"{cfg['requests']} requests from {cfg['shoppers']:,} shoppers in {cfg['cohorts']} cohorts at "
        f"{cfg['rate']:g}/s, dev gateway at {cfg['latency_ms']} ms; catalog copy of {cfg['catalog']} "
        "products on the batch worker during the second phase.",
        "",
        "| phase | served | n | p50 ms | p95 ms | p99 ms | floor p50 / p95 / p99 ms | target | met |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for ph in result["phases"]:
        f = ph["floor_ms"]
        floor = f"{f[50]:.0f} / {f[95]:.0f} / {f[99]:.0f}"
        for cache, stats in ph["by_cache"].items():
            target, met = "", ""
            if cache == "miss":
                target = f"p95 ≤ {f[95] + MISS_MARGIN_MS:.0f}"
                met = "yes" if ph["targets"]["miss_p95_within_50ms_of_floor"] else "no"
            elif cache == "hit":
                target = f"p95 < {HIT_TARGET_MS:.0f}"
                met = "yes" if ph["targets"]["hit_p95_under_20ms"] else "no"
            lines.append(
                f"| {ph['phase']} | {cache} | {stats['n']} | {stats[50]:.1f} | {stats[95]:.1f} "
                f"| {stats[99]:.1f} | {floor if cache == 'miss' else '0'} | {target} | {met} |"
            )
    lines.append("")
    for ph in result["phases"]:
        p = ph["pickup_ms"]
        extra = ""
        if "catalog_copy" in ph:
            c = ph["catalog_copy"]
            extra = (
                f"; catalog copy: {c['done_when_stream_ended']}/{c['products']} done when the last "
                f"request was sent, all done after {c['finished_after_s']} s"
            )
        cores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(ph.get("cores_used_while_sending", {}).items()))
        if cores:
            extra += f"; cores used while sending: {cores}"
        lines.append(
            f"- {ph['phase']}: {ph['model_calls']} model calls for {ph['requests']} requests "
            f"(cohort hit ratio {ph['cohort_hit_ratio']:.1%}, sent at {ph['rate_per_s']}/s); "
            f"pick-up p50 {p[50]:.1f} ms, p95 {p[95]:.1f} ms, p99 {p[99]:.1f} ms{extra}"
        )
    load = result.get("load_average", {})
    lines.append(
        f"- machine: {result.get('cpus')} CPUs, load average {load.get('before')} before the run, "
        f"{load.get('after')} after"
    )
    led = result["ledger"]
    lines.append(
        "- ledger (pipeline `personalization`, the whole run with its warm-up): "
        f"{led['personalize_model_calls']} model calls, "
        f"{led['personalize_result_cache_hits']} result-cache hits, cohort hit ratio "
        f"{(led['cohort_hit_ratio'] or 0):.1%}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.personalization", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (~1 minute)")
    parser.add_argument("--requests", type=int, help="personalization requests in the loaded phase")
    parser.add_argument("--rate", type=float, help="requests per second")
    parser.add_argument("--latency-ms", type=int, help="the dev gateway's latency")
    parser.add_argument("--catalog", type=int, help="products in the catalog (and in the copy)")
    parser.add_argument("--batch-nice", type=int, help="run the batch worker under `nice -n N`")
    parser.add_argument("--interactive-processes", type=int, help="interactive worker processes")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    for name in ("requests", "rate", "latency_ms", "catalog", "batch_nice", "interactive_processes"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    with tempfile.TemporaryDirectory(prefix="bench-personalization-") as tmp:
        result = run(cfg, log_dir=Path(tmp))
    print(json.dumps(result, indent=1, default=str) if args.json else table(result))


if __name__ == "__main__":
    main()
