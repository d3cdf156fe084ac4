"""The batch lane yields the CPU to the interactive lane; a worker stops once on a group SIGTERM.

The placement is checked on the Procfile's own worker processes (the `lane` fixture, and a
batch worker in a PID namespace of its own, where an interactive worker comes and goes), by
reading each thread's scheduling policy and CPU affinity back from the kernel.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from adapters.errors import ConfigError
from adapters.settings import load_settings
from pipelines.dramatiq_gaps import StopOnce, ignoring_repeats
from pipelines.lanes import RECHECK_S, BatchLane, batch_cpus, is_batch_worker, worker_queues
from tests.fixtures.lane import HEARTBEATS, procfile_command
from tests.fixtures.redis import RedisProcess

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling calls")


def test_batch_worker_leaves_the_last_cpus_when_it_can() -> None:
    assert batch_cpus({0, 1}, 1) == {0}
    assert batch_cpus({2, 5, 7}, 1) == {2, 5}  # the last of the CPUs it may use, not CPU n-1
    assert batch_cpus(set(range(8)), 2) == set(range(6))
    # Nothing to spare, or nothing asked: the CPUs are left as they are.
    assert batch_cpus({0}, 1) is None
    assert batch_cpus({0, 1}, 2) is None
    assert batch_cpus({0, 1, 2, 3}, 0) is None


def test_only_workers_without_the_interactive_queue_are_batch_workers() -> None:
    assert is_batch_worker({"batch"})
    assert is_batch_worker({"batch", "default"})
    assert not is_batch_worker({"interactive"})
    assert not is_batch_worker({"batch", "interactive"})  # a single all-round worker
    assert not is_batch_worker(None)  # no --queues: it serves every queue


def test_bad_policy_is_an_error_that_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_CPU_POLICY", "fast")
    with pytest.raises(ConfigError, match="BATCH_CPU_POLICY"):
        load_settings()
    with pytest.raises(ValueError, match="BATCH_CPU_POLICY"):
        BatchLane("fast", 1)
    monkeypatch.setenv("BATCH_CPU_POLICY", "normal")
    monkeypatch.setenv("INTERACTIVE_RESERVED_CPUS", "-1")
    with pytest.raises(ConfigError, match="INTERACTIVE_RESERVED_CPUS"):
        load_settings()


def _worker_child(proc: Any) -> psutil.Process:
    """The Dramatiq worker process forked by the Procfile command's main process."""
    children = psutil.Process(proc.pid).children()
    assert len(children) == 1, children
    return children[0]


def _threads(pid: int) -> list[tuple[int, int, frozenset[int]]]:
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        out.append((int(tid), os.sched_getscheduler(int(tid)), frozenset(os.sched_getaffinity(int(tid)))))
    return out


def _placed(threads: list[tuple[int, int, frozenset[int]]]) -> tuple[list[Any], list[Any]]:
    """The threads placed (the batch policy) and those kept in place (the broker heartbeat)."""
    placed = [t for t in threads if t[1] == os.SCHED_IDLE]
    kept = [t for t in threads if t[1] != os.SCHED_IDLE]
    return placed, kept


def _wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> float:
    """Seconds until `check()` is true; fails after `timeout_s` with its last answer."""
    start = time.monotonic()
    while True:
        answer = check()
        if answer:
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.2)


@linux_only
def test_procfile_batch_worker_runs_idle_and_off_the_reserved_cpu(lane: Any) -> None:
    batch, interactive = lane.processes  # the Procfile's `worker` and `interactive` lines, one machine
    allowed = frozenset(os.sched_getaffinity(0))
    expected_cpus = batch_cpus(allowed, 1) or allowed
    batch_pid = _worker_child(batch).pid

    # Both lanes start at once: the batch worker may have booted before the interactive one was
    # there, and moves off the reserved CPU at its next look.
    def off_the_reserved_cpu() -> bool:
        placed, _ = _placed(_threads(batch_pid))
        return {cpus for _, _, cpus in placed} == {expected_cpus}

    _wait_for(off_the_reserved_cpu, RECHECK_S + 10, "batch worker off the reserved CPU")
    # Every thread (the consumers, the worker threads, the event loop) but one: the broker
    # heartbeat (pipelines/maintenance.py), which must run however busy the interactive lane is.
    placed, kept = _placed(_threads(batch_pid))
    assert len(placed) > 32
    assert [(policy, cpus) for _, policy, cpus in kept] == [(os.SCHED_OTHER, allowed)]

    interactive_threads = _threads(_worker_child(interactive).pid)
    assert {policy for _, policy, _ in interactive_threads} == {os.SCHED_OTHER}
    assert {cpus for _, _, cpus in interactive_threads} == {allowed}


def _private_pid_namespace() -> list[str] | None:
    """`unshare` into a PID namespace of its own with its own /proc (a container's view), or None."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return None
    command = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.geteuid() != 0:
        command[1:1] = ["--user", "--map-root-user"]
    probe = subprocess.run([*command, "true"], capture_output=True, timeout=10)
    return command if probe.returncode == 0 else None


# In the namespace: the Procfile's batch worker at once; its interactive worker on "start", stopped
# on "stop"; everything stopped when stdin closes.
_CONTROLLER = """
"$0" "$@" & batch=$!
while read -r line; do
  case "$line" in
    start) $INTERACTIVE & interactive=$! ;;
    stop) kill -TERM "$interactive"; wait "$interactive" ;;
  esac
done
kill -TERM "$batch"; wait "$batch"
"""


@pytest.fixture
def private_machine(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Any]]:
    """A batch worker (the Procfile's line) alone in a PID namespace, on a Redis of its own; the
    process takes "start"/"stop" lines on stdin for an interactive worker beside it."""
    namespace = _private_pid_namespace()
    if namespace is None:
        pytest.skip("no private PID namespace here (unshare)")
    import redis

    server = RedisProcess(data_dir=tmp_path / "redis")
    server.start()
    options = {"processes": "1", "threads": "32", "worker_shutdown_timeout": "1000"}
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "LOCAL_STORE_DIR": str(tmp_path / "objects"),
        "DAILY_BUDGET_USD": "1000",
        "INTERACTIVE": shlex.join(procfile_command("interactive", **options)),
    }
    root = Path(__file__).resolve().parents[2]
    with (tmp_path / "workers.log").open("ab") as log:
        proc = subprocess.Popen(
            [*namespace, "sh", "-c", _CONTROLLER, *procfile_command("worker", **options)],
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis.from_url(server.url)
    try:
        deadline = time.monotonic() + 90
        while not client.zrange(HEARTBEATS, 0, -1):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(
                    "batch worker did not start: " + (tmp_path / "workers.log").read_text()[-2000:]
                )
            time.sleep(0.05)
        yield proc, client
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        server.stop()


def _worker_processes(root: int, queue: str) -> list[int]:
    """Pids (this machine's numbering) of the forked worker processes serving `queue` under `root`."""
    out = []
    for proc in psutil.Process(root).children(recursive=True):
        try:
            queues = worker_queues(proc.cmdline())
            parent_queues = worker_queues(proc.parent().cmdline())
        except psutil.Error:
            continue
        if queues is not None and queue in queues and parent_queues == queues:  # a child of dramatiq's main
            out.append(proc.pid)
    return out


@linux_only
def test_batch_worker_reserves_a_cpu_only_while_an_interactive_worker_runs_beside_it(
    private_machine: tuple[subprocess.Popen[bytes], Any],
) -> None:
    allowed = frozenset(os.sched_getaffinity(0))
    reserved = batch_cpus(allowed, 1)
    if reserved is None:
        pytest.skip("one CPU: nothing to reserve")
    proc, _ = private_machine
    assert proc.stdin is not None
    (batch_pid,) = _worker_processes(proc.pid, "batch")

    def cpus_of_placed_threads() -> set[frozenset[int]] | None:
        placed, kept = _placed(_threads(batch_pid))
        if len(placed) <= 32:
            return None  # not placed yet (boot)
        # The broker heartbeat stays where it was whatever the lane does.
        assert [(policy, cpus) for _, policy, cpus in kept] == [(os.SCHED_OTHER, allowed)]
        return {cpus for _, _, cpus in placed}

    # Alone on its machine (a container's view): SCHED_IDLE, every CPU.
    _wait_for(lambda: cpus_of_placed_threads() == {allowed}, 30, "batch worker placed with every CPU")

    # The interactive lane starts beside it (honcho, `make dev`): off the last CPU at its next look.
    proc.stdin.write(b"start\n")
    proc.stdin.flush()
    _wait_for(lambda: _worker_processes(proc.pid, "interactive"), 30, "interactive worker started")
    _wait_for(lambda: cpus_of_placed_threads() == {reserved}, RECHECK_S + 5, "CPU reserved")

    # The interactive lane stops: the CPU comes back at the next look.
    proc.stdin.write(b"stop\n")
    proc.stdin.flush()
    _wait_for(lambda: not _worker_processes(proc.pid, "interactive"), 30, "interactive worker stopped")
    _wait_for(lambda: cpus_of_placed_threads() == {allowed}, RECHECK_S + 5, "CPU given back")


def test_a_repeated_stop_signal_is_dropped_within_the_window() -> None:
    calls: list[int] = []
    guarded = ignoring_repeats(lambda signum, frame: calls.append(signum), window_s=0.2)
    guarded(signal.SIGTERM, None)
    guarded(signal.SIGTERM, None)  # the platform's copy and Dramatiq's relay, a moment apart
    guarded(signal.SIGHUP, None)
    assert calls == [signal.SIGTERM]
    time.sleep(0.25)
    guarded(signal.SIGTERM, None)  # later: an operator who means it
    assert calls == [signal.SIGTERM, signal.SIGTERM]


def test_stop_guard_leaves_other_programs_handlers_alone() -> None:
    def ours(signum: int, frame: Any) -> None:
        return None

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        StopOnce().after_worker_boot(None, None)
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)
