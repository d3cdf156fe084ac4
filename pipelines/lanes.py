"""Where a batch worker runs on the CPU, so that an interactive lane on the same machine never waits for it.

Separate queues and processes keep batch messages from holding the interactive lane's
threads, but not its CPU: on a shared machine a catalog copy's worker takes half a core to a
core, and every hop of a cache hit (consumer, worker thread, event loop, Redis) then waits its
turn for a CPU. So a worker process that serves only batch queues, at boot:

- takes the `BATCH_CPU_POLICY` scheduling policy for all its threads: `idle` (default,
  Linux `SCHED_IDLE`: it runs when nothing else wants the CPU, and any waking thread of
  another process preempts it), `batch` (`SCHED_BATCH`: a fair share, no wake-up preemption),
  or `normal` (left alone);
- stays off the last `INTERACTIVE_RESERVED_CPUS` (default 1) of the CPUs it may use, when it
  has more than that many, but only while an interactive lane runs on the same machine: a
  process whose command line is a `dramatiq` worker with `interactive` among its `--queues`
  (`/proc/*/cmdline`). Under honcho (`make dev`) both lanes start at once, so it looks again
  every `RECHECK_S` and moves all its threads when the answer changes. In a container with its
  own PID namespace (production: one Procfile process per container) the other containers'
  processes are invisible, so a batch worker there keeps every CPU (decision 0024).
  `INTERACTIVE_RESERVED_CPUS=0` never reserves.

Lowering one's own priority and narrowing one's own affinity need no privileges. Where the
platform has neither call (macOS), or refuses it, the worker logs it and runs as it was; where
there is no /proc to look in, it makes no affinity call. The broker heartbeat thread
(`keep_in_place`, pipelines/maintenance.py) is left out of every placement.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dramatiq.middleware import Middleware

from adapters.logs import get_logger
from adapters.settings import get_settings
from pipelines.dramatiq_gaps import served_queues
from pipelines.queues import INTERACTIVE

log = get_logger("pipelines.lanes")

POLICIES = ("idle", "batch", "normal")
RECHECK_S = 10.0  # how often a batch worker looks again for an interactive lane beside it
_DRAMATIQ = frozenset({"dramatiq", "dramatiq-gevent"})
_QUEUES_LONG = "--queues"


@dataclass(frozen=True)
class Placement:
    """CPUs (None: as they were) and scheduling policy (None: as it was) for a process."""

    cpus: frozenset[int] | None
    policy: str | None


def is_batch_worker(queues: Any) -> bool:
    """A worker that serves named queues, none of them the interactive lane's."""
    return bool(queues) and INTERACTIVE not in queues


def _dramatiq_args(argv: Sequence[str]) -> Sequence[str] | None:
    """The arguments after `dramatiq` in a command line (`dramatiq ...`, `python .../dramatiq ...`,
    `python -m dramatiq ...`), or None when it is not the dramatiq command."""
    if argv and os.path.basename(argv[0]) in _DRAMATIQ:
        return argv[1:]
    if not argv or not os.path.basename(argv[0]).startswith("python"):
        return None
    for i, arg in enumerate(argv[1:], start=1):
        if arg == "-m":
            return argv[i + 2 :] if i + 1 < len(argv) and argv[i + 1] in _DRAMATIQ else None
        if not arg.startswith("-"):  # the script the interpreter runs (a shebang's exec)
            return argv[i + 1 :] if os.path.basename(arg) in _DRAMATIQ else None
    return None


def worker_queues(argv: Sequence[str]) -> frozenset[str] | None:
    """The queues a `dramatiq` worker command line names with `--queues`/`-Q` (as dramatiq's own
    parser reads them: the last such option wins), or None: not dramatiq, or no queues named."""
    args = _dramatiq_args(argv)
    if args is None:
        return None
    queues: list[str] | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        name, has_value, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if arg.startswith("-Q") and len(arg) > 2:  # -Qinteractive
            queues = [arg[2:]]
        elif len(name) > 2 and name.startswith("--") and _QUEUES_LONG.startswith(name) and has_value:
            queues = [value]  # --queues=interactive (or an abbreviation, as argparse allows)
        elif arg == "-Q" or (len(name) > 2 and name.startswith("--") and _QUEUES_LONG.startswith(name)):
            queues = []
            while i < len(args) and not args[i].startswith("-"):
                queues.append(args[i])
                i += 1
    return frozenset(queues) if queues is not None else None


def serves_interactive(argv: Sequence[str]) -> bool:
    """A `dramatiq` worker command line with the interactive queue among its `--queues`."""
    queues = worker_queues(argv)
    return queues is not None and INTERACTIVE in queues


def interactive_lane_in(cmdlines: Iterable[Sequence[str]]) -> bool:
    """Whether any of these command lines is a worker of the interactive lane."""
    return any(serves_interactive(argv) for argv in cmdlines)


def read_cmdlines(proc: Path = Path("/proc")) -> list[list[str]] | None:
    """Every visible process's command line (`/proc/<pid>/cmdline`), or None where there is no /proc."""
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return None
    out = []
    for pid in pids:
        try:
            raw = (proc / pid / "cmdline").read_bytes()
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if raw:  # kernel threads and zombies have none
            out.append([part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")])
    return out


def interactive_lane_visible(proc: Path = Path("/proc")) -> bool | None:
    """Whether an interactive lane's worker runs on this machine (None: no /proc to tell)."""
    cmdlines = read_cmdlines(proc)
    return None if cmdlines is None else interactive_lane_in(cmdlines)


def batch_cpus(allowed: set[int] | frozenset[int], reserved: int) -> frozenset[int] | None:
    """The CPUs a batch worker keeps: all but the last `reserved`, or None when too few to spare any."""
    if reserved <= 0 or len(allowed) <= reserved:
        return None
    return frozenset(sorted(allowed)[:-reserved])


def cpus_for(allowed: set[int] | frozenset[int], reserved: int, colocated: bool) -> frozenset[int]:
    """The CPUs a batch worker runs on: all it may use, less the last `reserved` while an
    interactive lane runs on the same machine (and there are enough to spare them)."""
    kept = batch_cpus(allowed, reserved) if colocated else None
    return kept if kept is not None else frozenset(allowed)


def scheduling_policy(policy: str) -> str | None:
    """`BATCH_CPU_POLICY` checked: the policy to apply (None: `normal`, left alone)."""
    if policy not in POLICIES:
        raise ValueError(f"BATCH_CPU_POLICY must be one of {', '.join(POLICIES)}, not {policy!r}")
    return None if policy == "normal" else policy


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
    """Apply `placement` to every thread of this process but those kept in place.

    Threads go on running meanwhile: one started by a thread not yet placed is born with the old
    place, after the listing. So the threads are listed again until no new one shows up; a thread
    started after that is started by a placed thread, and inherits its place.
    """
    cpus, policy = placement.cpus, placement.policy
    done = set(_KEEP)
    while todo := [tid for tid in _threads() if tid not in done]:
        for tid in todo:
            done.add(tid)
            try:
                if cpus is not None:
                    os.sched_setaffinity(tid, cpus)
                if policy is not None:
                    number = os.SCHED_IDLE if policy == "idle" else os.SCHED_BATCH
                    os.sched_setscheduler(tid, number, os.sched_param(0))
            except ProcessLookupError:  # the thread ended since the listing
                continue


class BatchLane:
    """A batch process's place on the CPU: its policy once, its CPUs re-chosen every `every_s` as an
    interactive lane starts or stops on the same machine (`look`: is one running? None: cannot tell)."""

    def __init__(
        self,
        policy: str,
        reserved: int,
        *,
        look: Callable[[], bool | None] = interactive_lane_visible,
        every_s: float = RECHECK_S,
    ) -> None:
        self.policy = scheduling_policy(policy)  # a bad one is an error here, before anything is applied
        self.reserved = reserved
        self.every_s = every_s
        self._look = look
        self.allowed = frozenset(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        self.colocated: bool | None = None  # the answer the CPUs now follow
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def can_reserve(self) -> bool:
        """Whether there is any CPU to reserve (the calls exist, enough CPUs, a reservation asked)."""
        return self.allowed is not None and batch_cpus(self.allowed, self.reserved) is not None

    def first(self) -> Placement:
        """The placement at start: the policy, and the CPUs as the interactive lane's presence asks."""
        self.colocated = self._look() if self.can_reserve() else None
        cpus = None
        if self.colocated and self.allowed is not None:
            cpus = batch_cpus(self.allowed, self.reserved)
        return Placement(cpus=cpus, policy=self.policy)

    def changed(self) -> bool | None:
        """Look again: the new answer when it differs from the one the CPUs follow, else None."""
        colocated = self._look()
        return None if colocated is None or colocated == self.colocated else colocated

    def follow(self, colocated: bool) -> frozenset[int]:
        """Move every thread (but those kept in place) to the CPUs for `colocated`."""
        assert self.allowed is not None  # only called when can_reserve()
        cpus = cpus_for(self.allowed, self.reserved, colocated)
        apply(Placement(cpus=cpus, policy=None))
        self.colocated = colocated
        return cpus

    def start(self) -> Placement:
        """Apply the first placement; when a reservation is possible and /proc answers, keep it up to
        date from a daemon thread (it inherits this thread's place). OSError: the platform refused."""
        placement = self.first()
        if placement.cpus is not None or placement.policy is not None:
            apply(placement)
        if self.colocated is not None and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lane-placement", daemon=True)
            self._thread.start()
        return placement

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=1)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                colocated = self.changed()
                if colocated is not None:
                    cpus = self.follow(colocated)
                    log.info("lane_placement", cpus=sorted(cpus), interactive_lane=colocated)
            except Exception as exc:  # refused, or /proc in a bad state: try again next time
                log.warning("lane_placement_refused", error=f"{type(exc).__name__}: {exc}")


class LanePlacement(Middleware):
    """At worker boot, a batch-only worker yields the CPU to the interactive lane (see module doc)."""

    def __init__(self) -> None:
        self._lane: BatchLane | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        queues = served_queues(worker)
        if not is_batch_worker(queues):
            return
        settings = get_settings()
        lane = BatchLane(settings.batch_cpu_policy, settings.interactive_reserved_cpus)
        try:
            placement = lane.start()
        except (OSError, AttributeError) as exc:  # no such call here, or refused
            lane.stop()
            log.warning("lane_placement_refused", error=f"{type(exc).__name__}: {exc}")
            return
        self._lane = lane
        if placement.cpus is None and placement.policy is None and lane.colocated is None:
            return
        log.info(
            "lane_placement",
            queues=sorted(queues or ()),
            cpus=sorted(placement.cpus) if placement.cpus is not None else "all",
            policy=placement.policy or "normal",
            interactive_lane=lane.colocated,
        )

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        lane, self._lane = self._lane, None
        if lane is not None:
            lane.stop()


__all__ = [
    "RECHECK_S",
    "BatchLane",
    "LanePlacement",
    "Placement",
    "apply",
    "batch_cpus",
    "cpus_for",
    "interactive_lane_in",
    "interactive_lane_visible",
    "is_batch_worker",
    "keep_in_place",
    "read_cmdlines",
    "scheduling_policy",
    "serves_interactive",
    "worker_queues",
]
