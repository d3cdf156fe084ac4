"""The batch lane yields the CPU to the interactive lane; a worker stops once on a group SIGTERM.

The placement is checked on the Procfile's own worker processes (the `lane` fixture), by
reading each thread's scheduling policy and CPU affinity back from the kernel.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import psutil
import pytest

from adapters.errors import ConfigError
from adapters.settings import load_settings
from pipelines.dramatiq_gaps import StopOnce, ignoring_repeats
from pipelines.lanes import batch_cpus, batch_placement, is_batch_worker

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
        batch_placement("fast", 1)
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


@linux_only
def test_procfile_batch_worker_runs_idle_and_off_the_reserved_cpu(lane: Any) -> None:
    batch, interactive = lane.processes  # the Procfile's `worker` and `interactive` lines
    allowed = frozenset(os.sched_getaffinity(0))
    expected_cpus = batch_cpus(allowed, 1) or allowed

    batch_threads = _threads(_worker_child(batch).pid)
    # Every thread (the consumers, the worker threads, the event loop) but one: the broker
    # heartbeat (pipelines/maintenance.py), which must run however busy the interactive lane is.
    assert len(batch_threads) > 32
    placed = [t for t in batch_threads if t[1] == os.SCHED_IDLE]
    kept = [t for t in batch_threads if t[1] != os.SCHED_IDLE]
    assert [policy for _, policy, _ in kept] == [os.SCHED_OTHER]
    assert {cpus for _, _, cpus in placed} == {expected_cpus}

    interactive_threads = _threads(_worker_child(interactive).pid)
    assert {policy for _, policy, _ in interactive_threads} == {os.SCHED_OTHER}
    assert {cpus for _, _, cpus in interactive_threads} == {allowed}


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
