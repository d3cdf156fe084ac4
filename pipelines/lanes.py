"""Where a batch worker runs on the CPU, so that the interactive lane on the same machine never waits for it.

Separate queues and processes keep batch messages from holding the interactive lane's
threads, but not its CPU: on a shared machine a catalog copy's worker takes half a core to a
core, and every hop of a cache hit (consumer, worker thread, event loop, Redis) then waits its
turn for a CPU. So a worker process that serves only batch queues, at boot:

- takes the `BATCH_CPU_POLICY` scheduling policy for all its threads: `idle` (default,
  Linux `SCHED_IDLE`: it runs when nothing else wants the CPU, and any waking thread of
  another process preempts it), `batch` (`SCHED_BATCH`: a fair share, no wake-up preemption),
  or `normal` (left alone);
- stays off the last `INTERACTIVE_RESERVED_CPUS` (default 1) of the CPUs it may use, when it
  has more than that many. One worker process is one GIL, so it rarely uses more than one
  core anyway; on machines that run only batch workers set it to 0.

Lowering one's own priority and narrowing one's own affinity need no privileges. Where the
platform has neither call (macOS), or refuses it, the worker logs it and runs as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from adapters.settings import get_settings
from pipelines.queues import INTERACTIVE

log = get_logger("pipelines.lanes")

POLICIES = ("idle", "batch", "normal")


@dataclass(frozen=True)
class Placement:
    """CPUs (None: as they were) and scheduling policy (None: as it was) for a process."""

    cpus: frozenset[int] | None
    policy: str | None


def is_batch_worker(queues: Any) -> bool:
    """A worker that serves named queues, none of them the interactive lane's."""
    return bool(queues) and INTERACTIVE not in queues


def batch_cpus(allowed: set[int] | frozenset[int], reserved: int) -> frozenset[int] | None:
    """The CPUs a batch worker keeps: all but the last `reserved`, or None when too few to spare any."""
    if reserved <= 0 or len(allowed) <= reserved:
        return None
    return frozenset(sorted(allowed)[:-reserved])


def batch_placement(policy: str, reserved: int) -> Placement:
    """Where a batch worker process should run on this machine."""
    if policy not in POLICIES:
        raise ValueError(f"BATCH_CPU_POLICY must be one of {', '.join(POLICIES)}, not {policy!r}")
    cpus = None
    if hasattr(os, "sched_getaffinity"):
        cpus = batch_cpus(os.sched_getaffinity(0), reserved)
    return Placement(cpus=cpus, policy=None if policy == "normal" else policy)


def _threads() -> list[int]:
    """Every thread of this process (Linux applies both calls per thread; later threads inherit)."""
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


# Threads that keep their place: the broker heartbeat must run however busy the interactive lane
# keeps the CPUs (a starved heartbeat makes the fleet judge a live worker dead and redo its jobs).
_KEEP: set[int] = set()


def keep_in_place(native_id: int | None) -> None:
    """Leave this thread (a `threading.Thread.native_id`) out of every later `apply`."""
    if native_id is not None:
        _KEEP.add(native_id)


def apply(placement: Placement) -> None:
    """Apply `placement` to every thread of this process but those kept in place."""
    cpus, policy = placement.cpus, placement.policy
    for tid in _threads():
        if tid in _KEEP:
            continue
        if cpus is not None:
            os.sched_setaffinity(tid, cpus)
        if policy is not None:
            number = os.SCHED_IDLE if policy == "idle" else os.SCHED_BATCH
            os.sched_setscheduler(tid, number, os.sched_param(0))


class LanePlacement(Middleware):
    """At worker boot, a batch-only worker yields the CPU to the interactive lane (see module doc)."""

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        queues = getattr(worker, "consumer_whitelist", None)  # the CLI's --queues (None: all)
        if not is_batch_worker(queues):
            return
        settings = get_settings()
        placement = batch_placement(settings.batch_cpu_policy, settings.interactive_reserved_cpus)
        if placement.cpus is None and placement.policy is None:
            return
        try:
            apply(placement)
        except (OSError, AttributeError) as exc:  # no such call here, or refused
            log.warning("lane_placement_refused", error=f"{type(exc).__name__}: {exc}")
            return
        log.info(
            "lane_placement",
            queues=sorted(queues or ()),
            cpus=sorted(placement.cpus) if placement.cpus is not None else "all",
            policy=placement.policy or "normal",
        )


__all__ = [
    "LanePlacement",
    "Placement",
    "apply",
    "batch_cpus",
    "batch_placement",
    "is_batch_worker",
    "keep_in_place",
]
