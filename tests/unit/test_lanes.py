"""The batch lane's CPU reservation: who counts as an interactive lane, which CPUs a batch worker keeps."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from pipelines.lanes import (
    BatchLane,
    Placement,
    cpus_for,
    interactive_lane_in,
    interactive_lane_visible,
    read_cmdlines,
    serves_interactive,
    worker_queues,
)

VENV = "/app/.venv/bin"


def argv(line: str) -> list[str]:
    return shlex.split(line)


def _procfile(name: str) -> list[str]:
    """The Procfile's line `name` as the kernel shows it: a shebang script runs as interpreter + script."""
    for line in (Path(__file__).resolve().parents[2] / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            args = shlex.split(command)
            return [f"{VENV}/python", f"{VENV}/{args[0]}", *args[1:]]
    raise AssertionError(f"Procfile has no {name!r} line")


def test_procfile_lines_as_the_kernel_shows_them() -> None:
    assert worker_queues(_procfile("interactive")) == {"interactive"}
    assert worker_queues(_procfile("worker")) == {"batch", "deliveries"}
    assert serves_interactive(_procfile("interactive"))
    assert not serves_interactive(_procfile("worker"))
    assert not serves_interactive(_procfile("web"))


def test_every_way_dramatiq_reads_its_queues() -> None:
    assert serves_interactive(argv("dramatiq entrypoints.worker:setup -Q interactive"))
    assert serves_interactive(argv("dramatiq entrypoints.worker:setup -Qinteractive"))
    assert serves_interactive(argv("dramatiq entrypoints.worker:setup --queues=interactive"))
    assert serves_interactive(argv("dramatiq entrypoints.worker:setup --que batch interactive -p 1"))
    assert serves_interactive(argv("python3.11 -u -m dramatiq entrypoints.worker:setup -Q batch interactive"))
    assert serves_interactive(argv("/usr/bin/dramatiq-gevent app --queues interactive"))
    # The last --queues wins, as in dramatiq's own parser; values stop at the next option.
    assert not serves_interactive(argv("dramatiq app --queues interactive --queues batch"))
    assert worker_queues(argv("dramatiq app -Q batch --threads 8 interactive")) == {"batch"}
    assert not serves_interactive(argv("dramatiq app -- --queues interactive"))


def test_what_is_not_an_interactive_lane() -> None:
    assert worker_queues(argv("dramatiq entrypoints.worker:setup")) is None  # every queue, none named
    assert not serves_interactive(argv("dramatiq entrypoints.worker:setup"))
    assert not serves_interactive(argv("celery worker --queues interactive"))
    assert not serves_interactive(argv("python -m pytest tests -k 'dramatiq --queues interactive'"))
    assert not serves_interactive(argv("python -c 'import dramatiq' --queues interactive"))
    assert not serves_interactive(argv("vim dramatiq --queues interactive"))
    assert not serves_interactive(argv("sh -c 'dramatiq app --queues interactive'"))  # its child counts
    assert not serves_interactive([])


def test_any_interactive_worker_among_the_processes() -> None:
    batch = argv("dramatiq entrypoints.worker:setup --queues batch deliveries")
    interactive = argv("dramatiq entrypoints.worker:setup --queues interactive")
    assert not interactive_lane_in([batch, batch, argv("redis-server *:6379"), argv("sh")])
    assert interactive_lane_in([batch, argv("sh"), interactive])
    assert not interactive_lane_in([])


def test_cpus_kept_with_and_without_an_interactive_lane() -> None:
    assert cpus_for({0, 1}, 1, colocated=True) == {0}
    assert cpus_for({0, 1}, 1, colocated=False) == {0, 1}  # alone on its machine: every CPU
    assert cpus_for({2, 5, 7}, 1, colocated=True) == {2, 5}
    assert cpus_for(set(range(8)), 2, colocated=True) == set(range(6))
    assert cpus_for(set(range(8)), 0, colocated=True) == set(range(8))  # 0: never reserve
    assert cpus_for({3}, 1, colocated=True) == {3}  # nothing to spare


def _fake_proc(root: Path, cmdlines: dict[str, bytes]) -> Path:
    for pid, raw in cmdlines.items():
        (root / pid).mkdir()
        (root / pid / "cmdline").write_bytes(raw)
    (root / "self").mkdir()  # not a pid
    return root


def test_proc_reader(tmp_path: Path) -> None:
    proc = _fake_proc(
        tmp_path,
        {
            "1": b"/sbin/init\0",
            "2": b"",  # a kernel thread
            "40": b"/app/.venv/bin/python\0/app/.venv/bin/dramatiq\0app\0--queues\0batch\0",
        },
    )
    assert sorted(read_cmdlines(proc) or []) == [
        ["/app/.venv/bin/python", "/app/.venv/bin/dramatiq", "app", "--queues", "batch"],
        ["/sbin/init"],
    ]
    assert interactive_lane_visible(proc) is False
    (proc / "41").mkdir()
    (proc / "41" / "cmdline").write_bytes(b"dramatiq\0app\0-Q\0interactive\0")
    assert interactive_lane_visible(proc) is True
    assert read_cmdlines(tmp_path / "absent") is None
    assert interactive_lane_visible(tmp_path / "absent") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads this machine's /proc")
def test_this_process_is_seen_in_the_real_proc() -> None:
    cmdlines = read_cmdlines()
    assert cmdlines is not None
    assert (
        list(Path(f"/proc/{os.getpid()}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")) in cmdlines
    )


def test_batch_lane_follows_the_answers() -> None:
    answers: list[bool | None] = [False, None, True, True, False]
    lane = BatchLane("normal", 1, look=lambda: answers.pop(0))
    lane.allowed = frozenset({0, 1})  # a 2-CPU machine, whatever this one is
    assert lane.first() == Placement(cpus=None, policy=None)  # alone at boot: the CPUs as they are
    assert lane.colocated is False
    assert lane.changed() is None  # /proc unreadable this time: no change
    assert lane.changed() is True  # an interactive lane started
    lane.colocated = True  # as `follow` leaves it (not called here: it would move this test's threads)
    assert lane.changed() is None  # still there
    assert lane.changed() is False  # gone
    assert answers == []

    beside = BatchLane("idle", 1, look=lambda: True)
    beside.allowed = frozenset({0, 1, 2, 3})
    assert beside.first() == Placement(cpus=frozenset({0, 1, 2}), policy="idle")


def test_nothing_to_reserve_means_no_look_and_no_recheck() -> None:
    never = BatchLane("idle", 0, look=lambda: pytest.fail("looked with nothing to reserve"))
    never.allowed = frozenset({0, 1})
    assert never.first() == Placement(cpus=None, policy="idle")  # the policy applies regardless
    assert never.colocated is None  # so `start` runs no re-check thread
    one_cpu = BatchLane("batch", 1, look=lambda: pytest.fail("looked with one CPU"))
    one_cpu.allowed = frozenset({0})
    assert one_cpu.first() == Placement(cpus=None, policy="batch")
    no_calls = BatchLane("idle", 1, look=lambda: pytest.fail("looked without affinity calls"))
    no_calls.allowed = None  # macOS
    assert no_calls.first() == Placement(cpus=None, policy="idle")
    unreadable = BatchLane("idle", 1, look=lambda: None)  # no /proc: today's behaviour, no affinity call
    unreadable.allowed = frozenset({0, 1})
    assert unreadable.first() == Placement(cpus=None, policy="idle")
    assert unreadable.colocated is None


def test_a_bad_policy_is_refused_before_anything_is_applied() -> None:
    with pytest.raises(ValueError, match="BATCH_CPU_POLICY"):
        BatchLane("fast", 1, look=lambda: pytest.fail("looked"))


def test_a_thread_born_while_placing_is_placed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread started by one not yet placed appears after the first listing: it is placed as well."""
    from pipelines import lanes

    # Given a process whose second listing shows a thread born during the first pass (patched
    # listing and affinity call, restored after), and a kept heartbeat thread
    listings = iter([[11, 12], [11, 12, 13], [11, 12, 13]])
    monkeypatch.setattr(lanes, "_threads", lambda: next(listings))
    placed: list[int] = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda tid, cpus: placed.append(tid))
    monkeypatch.setattr(lanes, "_KEEP", {12})
    # When the batch lane's CPUs are applied
    lanes.apply(lanes.Placement(cpus=frozenset({0}), policy=None))
    # Then every thread but the kept one is placed, the late one included, each once
    assert placed == [11, 13]
