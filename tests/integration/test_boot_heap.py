"""Workers and the web process keep what they built at boot out of the garbage collector's passes.

Checked on the Procfile's own processes (the `lane` fixture's workers, and the `web` line
started here with its lifespan on, as production runs it): each says, once started, how many
objects it froze (`entrypoints.heap.keep_boot_heap`), and that count holds the boot's imports,
not a handful.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.lane import procfile_command
from tests.fixtures.redis import free_port


def frozen_counts(log: Path) -> list[int]:
    """`frozen_objects` of each `boot_heap_frozen` line in a worker's log (JSON lines)."""
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [int(line["frozen_objects"]) for line in lines if line.get("event") == "boot_heap_frozen"]


def frozen_within(log: Path, processes: int, timeout_s: float = 30.0) -> list[int]:
    """`frozen_counts(log)` once `processes` have logged theirs (the freeze follows the warm-up,
    which may end after the first jobs have run), or what there is at `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while len(counts := frozen_counts(log)) < processes and time.monotonic() < deadline:
        time.sleep(0.1)  # polling a log, not a test sleep
    return counts


def test_every_procfile_worker_freezes_its_boot_heap(lane: Any) -> None:
    logs = lane.store_dir.parent
    for name, process in zip(("worker", "interactive"), lane.processes, strict=True):
        processes = int(process.args[process.args.index("--processes") + 1])
        counts = frozen_within(logs / f"{name}.log", processes)
        assert len(counts) == processes, (
            f"{name}: {len(counts)} of {processes} processes logged boot_heap_frozen"
        )
        # A bare interpreter tracks ~20,000 objects; a worker with litellm imported, ~400,000.
        assert min(counts) > 150_000, f"{name}: froze only {counts}"


def test_a_frozen_heap_still_collects_what_comes_after() -> None:
    import gc

    from entrypoints.heap import keep_boot_heap

    assert gc.get_freeze_count() == 0  # nothing in the test process froze before: unfreeze restores it
    try:
        keep_boot_heap()
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # frozen, not switched off: new objects are still collected on their own

        class Node:
            peer: Any = None

        a, b = Node(), Node()
        a.peer, b.peer = b, a  # a cycle made after the freeze: only the collector frees it
        del a, b
        assert gc.collect() >= 2
    finally:
        gc.unfreeze()  # the test process's collector as it was


def test_the_procfile_web_process_freezes_its_boot_heap(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "web.log"
    # Given the web process as the Procfile runs it, on the session's Redis (LOG_LEVEL=INFO:
    # the suite's WARNING would hide the line)
    argv = procfile_command("web", port=str(port), host="127.0.0.1")
    environ = {**os.environ, "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=environ, stdout=out, stderr=subprocess.STDOUT)
    try:
        # When it has started and answers
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the web process did not answer within 60 s"
            time.sleep(0.1)  # polling a starting server, not a test sleep
        # Then it froze its boot heap once: the app, its services and imports (a bare interpreter
        # tracks ~20,000 objects; the app ~130,000)
        counts = frozen_counts(log)
        assert len(counts) == 1, log.read_text()[-3000:]
        assert counts[0] > 80_000, counts
    finally:
        proc.terminate()
        proc.wait(timeout=30)
