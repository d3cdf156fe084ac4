"""Running batches of jobs against a worker and measuring them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench.catalog import catalog
from bench.client import Client
from bench.env import ROOT, BenchEnv, Child, peak_rss_mb, procfile_command, rss_mb
from bench.profile import profiled
from bench.report import progress_console

BATCH = "batch"


def _worker_option(flag: str, default: int) -> int:
    argv = procfile_command("worker")
    return int(argv[argv.index(flag) + 1]) if flag in argv else default


def worker_threads() -> int:
    """`--threads` of the Procfile's worker line (Dramatiq's default, 8, when absent)."""
    return _worker_option("--threads", 8)


def worker_processes() -> int:
    """`--processes` of the Procfile's worker line (Dramatiq's default, the CPU count, when absent)."""
    return _worker_option("--processes", os.cpu_count() or 1)


def cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes used so far."""
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


@dataclass
class Batch:
    """What one timed batch of jobs did."""

    count: int
    elapsed_s: float
    submit_s: float
    done: int
    failed: int
    errors: list[str]
    other: dict[str, int]
    worker_cpu_s: float
    gateway_cpu_s: float
    job_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s else 0.0


@contextmanager
def progress_bar(label: str, total: int, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr; `advance_to(n)` moves it."""
    if not enabled:
        yield lambda n: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=progress_console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.update(task, completed=n)


def start_worker(env: BenchEnv, client: Client, name: str = "worker") -> Child:
    """The Procfile's worker, booted and warmed on a few jobs (litellm imported, pools open)."""
    child = env.start_worker(name)
    warm_up(env, client, child)
    return child


def warm_up(env: BenchEnv, client: Client, child: Child, count: int = 8) -> None:
    for store, product in catalog(count, start=10**6 + child.proc.pid * 100):
        client.submit_copy(store, product)
    try:
        client.wait_drained(BATCH, timeout_s=120, interval_s=0.05)
    except TimeoutError:
        raise RuntimeError(f"the worker did not warm up: {child.log_path.read_text()[-3000:]}") from None


def prime_gateway(env: BenchEnv, primer: FloorProcess) -> None:
    """Send the N chat requests every phase sends once, untimed, with no added latency.

    `primer` is a `FloorProcess` of the gateway client over the same N requests, started early
    (it boots while the rest does). The dev gateway composes an answer once per request body and
    replays it after. Primed, it costs every timed phase the same CPU per call (~0.7 ms here,
    ~2 ms to compose), on the cores the worker shares with it; in production that CPU is
    Cloudflare's. Leaves latency at 0.
    """
    env.gateway_config(latency_ms=0)
    try:
        primer.ready()
        primer.go(env.gateway_pid())
    finally:
        primer.kill()


def run_copy(
    env: BenchEnv,
    client: Client,
    worker: Child,
    products: Iterable[tuple[str, dict[str, Any]]],
    count: int,
    *,
    options: dict[str, Any] | None = None,
    window: int | None = None,
    label: str = "product copy",
    progress: bool = True,
    timeout_s: float = 1800,
    profile: Path | None = None,
) -> Batch:
    """Submit `count` product-copy jobs (at most `window` pending at once) and wait for all of them."""
    pids = worker.worker_pids()
    gateway = [env.gateway_pid()]
    cpu0, gcpu0 = cpu_s(pids), cpu_s(gateway)
    ids: list[str] = []
    submit_s = 0.0
    started = time.monotonic()
    recording = profiled(pids[0], profile) if profile is not None else nullcontext()
    with recording, progress_bar(label, count, progress) as advance:
        for store, product in products:
            if window is not None and len(ids) % 50 == 0:
                while (pending := client.pending(BATCH)) >= window:
                    advance(len(ids) - pending)
                    time.sleep(0.02)
            t = time.monotonic()
            ids.append(client.submit_copy(store, product, options))
            submit_s += time.monotonic() - t
        ended = client.wait_drained(BATCH, timeout_s=timeout_s, on_tick=lambda left: advance(len(ids) - left))
    elapsed = ended - started
    outcome = client.outcomes(ids)
    return Batch(
        count=len(ids),
        elapsed_s=elapsed,
        submit_s=submit_s,
        done=outcome.done,
        failed=outcome.failed,
        errors=outcome.errors,
        other=outcome.other,
        worker_cpu_s=cpu_s(pids) - cpu0,
        gateway_cpu_s=cpu_s(gateway) - gcpu0,
        job_ids=ids,
    )


def worker_peak_rss_mb(worker: Child) -> float:
    return max((peak_rss_mb(pid) for pid in worker.worker_pids()), default=0.0)


def worker_rss_mb(worker: Child) -> float:
    return max((rss_mb(pid) for pid in worker.worker_pids()), default=0.0)


class FloorProcess:
    """`python -m bench.floors` started early (imports and set-up untimed), run on `go()`."""

    def __init__(
        self, env: BenchEnv, client_name: str, count: int, concurrency: int, setting: str | None = None
    ) -> None:
        argv = [sys.executable, "-m", "bench.floors", client_name, "--base-url", env.gateway_base]
        argv += ["--count", str(count), "--concurrency", str(concurrency), "--wait-go"]
        argv += ["--setting", setting] if setting else []
        self.name = setting or client_name
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env.env(), text=True
        )

    def ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            raise RuntimeError(f"floor {self.name} failed to start: {line!r}")

    def go(self, gateway_pid: int, *, last: bool = True) -> dict[str, Any]:
        """One timed run; after the `last` one the process exits."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        gcpu0 = cpu_s([gateway_pid])
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if last:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        if not line:
            raise RuntimeError(f"floor {self.name} exited with {self.proc.returncode}")
        result: dict[str, Any] = json.loads(line)
        result["gateway_cpu_s"] = cpu_s([gateway_pid]) - gcpu0
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
