"""The worker as the Procfile runs it (`dramatiq entrypoints.worker:setup`), in a process tests may kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DRAMATIQ = str(Path(sys.executable).with_name("dramatiq"))
# Environment the worker must not inherit from the test process (it gets its own servers).
_SCRUBBED = (
    "REDIS_URL",
    "AI_GATEWAY_URL",
    "CF_ACCOUNT_ID",
    "AI_GATEWAY_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_ENDPOINT_URL",
    "R2_THEMES_BUCKET",
    "LOCAL_STORE_DIR",
    "METRICS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
)


@dataclass
class WorkerProcess:
    """`dramatiq entrypoints.worker:setup --queues batch interactive --processes 1 --threads N`, own env."""

    env: dict[str, str]
    log_path: Path
    threads: int = 16
    queues: tuple[str, ...] = ("batch", "interactive")
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = field(default=0)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(self.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                [
                    DRAMATIQ,
                    "entrypoints.worker:setup",
                    "--queues",
                    *self.queues,
                    "--processes",
                    "1",
                    "--threads",
                    str(self.threads),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: kill() takes the forked worker too
            )
        finally:
            log.close()
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hooks, no requeue, no acks, like a crash."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None
        self.kills += 1

    def stop(self, timeout_s: float = 15.0) -> bool:
        """SIGTERM to the whole process group, as a platform stops it (Dramatiq's graceful
        shutdown), then SIGKILL if it lingers; True when it exited on its own."""
        if self.proc is None:
            return True
        exited = True
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            exited = False
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
        return exited

    def restart(self) -> None:
        self.kill()
        self.start()

    def output(self) -> str:
        """Everything the worker processes wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_until(predicate: object, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll `predicate()` until it is true (the worker runs in another process)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)
