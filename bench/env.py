"""The processes a benchmark runs against: a private Redis, the dev gateway, the production worker.

Every process is our own child, on a free loopback port, stopped by `BenchEnv.close()`.
The worker is started with the Procfile's own `worker:` command line, so the benchmark
measures what production runs.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
# Never let a benchmark reach a real provider or bucket, whatever the shell has set.
_SCRUBBED = (
    "CF_ACCOUNT_ID",
    "AI_GATEWAY_URL",
    "AI_GATEWAY_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_ENDPOINT_URL",
    "REDIS_URL",
    "METRICS_PORT",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def procfile_command(process: str) -> list[str]:
    """The Procfile's command for `process` (e.g. `worker`), as argv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == process:
            return shlex.split(command.strip())
    raise RuntimeError(f"no {process!r} line in the Procfile")


def _wait(check: Any, what: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if check():
                return
        except (redis.RedisError, httpx.TransportError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout_s}s: {log.read_text()[-2000:]}")
        time.sleep(0.02)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (Linux `VmHWM`), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


@dataclass
class Child:
    """One process we started, with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes] = field(repr=False)

    def stop(self) -> None:
        """SIGKILL to the process and its children: nothing they hold matters once measured."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def worker_pids(self) -> list[int]:
        """The processes doing the work: the `dramatiq` command's forked children (or itself)."""
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [k.pid for k in kids] or [self.proc.pid]


class BenchEnv:
    """A private Redis and dev gateway, and workers started on demand; close() stops them all."""

    def __init__(self, *, latency_ms: int = 0, keep_dir: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="wandstore-bench-"))
        self.keep_dir = keep_dir
        self.children: list[Child] = []
        self.redis_port = free_port()
        self.gateway_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.gateway_root = f"http://127.0.0.1:{self.gateway_port}"
        self.gateway_base = f"{self.gateway_root}/v1/dev/wandstore-ai"
        self.objects_dir = self.dir / "objects"
        self.http = httpx.Client(timeout=30)
        try:
            self._start_redis()
            self._start_gateway(latency_ms)
        except BaseException:
            self.close()
            raise
        self.redis = redis.Redis.from_url(self.redis_url)

    # --- processes --------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log_path = self.dir / f"{name}.log"
        log = log_path.open("wb")
        # Its own process group, so stopping it stops what it forked (dramatiq's worker processes).
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        child = Child(name, proc, log_path, log)
        self.children.append(child)
        return child

    def _start_redis(self) -> None:
        from adapters.redis_conn import valkey_binary

        data = self.dir / "redis"
        data.mkdir()
        # Persistence as a production Redis usually runs it: AOF, fsync once a second.
        argv = [valkey_binary(), "--port", str(self.redis_port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(data), "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        child = self._spawn("redis", argv)
        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=0.2)
        _wait(client.ping, "valkey-server", child.proc, 10, child.log_path)

    def _start_gateway(self, latency_ms: int) -> None:
        argv = [sys.executable, "-m", "devgateway", "--port", str(self.gateway_port)]
        argv += ["--latency-ms", str(latency_ms)]
        child = self._spawn("gateway", argv)

        def healthy() -> bool:
            return self.http.get(self.gateway_root + "/_dev/health", timeout=1).status_code == 200

        _wait(healthy, "dev gateway", child.proc, 30, child.log_path)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a service process pointed at this bench's servers."""
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            REDIS_URL=self.redis_url,
            AI_GATEWAY_URL=self.gateway_base,
            LOCAL_STORE_DIR=str(self.objects_dir),
            LOG_LEVEL=env.get("BENCH_LOG_LEVEL", "INFO"),
            LOG_FORMAT="json",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def start_worker(
        self, name: str = "worker", argv: list[str] | None = None, extra_env: dict[str, str] | None = None
    ) -> Child:
        """The Procfile's `worker` (or `argv`), with `dramatiq` resolved next to this Python."""
        env = dict(extra_env or {})
        argv = list(argv or procfile_command("worker"))
        if argv and argv[0] == "env":  # `env NAME=VALUE ... command`
            argv.pop(0)
            while argv and "=" in argv[0]:
                name, _, value = argv.pop(0).partition("=")
                env.setdefault(name, value)
        if argv and argv[0] == "dramatiq":
            script = Path(sys.executable).parent / "dramatiq"
            argv[:1] = [str(script)] if script.exists() else [sys.executable, "-m", "dramatiq"]
        return self._spawn(name, argv, self.env(**env))

    def stop(self, child: Child) -> None:
        child.stop()
        self.children.remove(child)

    # --- the dev gateway's admin API --------------------------------------------

    def gateway_stats(self) -> dict[str, Any]:
        response = self.http.get(self.gateway_root + "/_dev/stats")
        response.raise_for_status()
        return dict(response.json())

    def gateway_config(self, **options: Any) -> None:
        self.http.post(self.gateway_root + "/_dev/config", json=options).raise_for_status()

    def gateway_reset(self) -> None:
        self.http.post(self.gateway_root + "/_dev/reset").raise_for_status()

    def gateway_pid(self) -> int:
        return next(c.proc.pid for c in self.children if c.name == "gateway")

    # --- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        self.http.close()
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> BenchEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def bench_env(*, latency_ms: int = 0) -> Iterator[BenchEnv]:
    env = BenchEnv(latency_ms=latency_ms)
    try:
        yield env
    finally:
        env.close()
