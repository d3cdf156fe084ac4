"""A worker process keeps what it built at boot out of the garbage collector's passes.

Checked on the Procfile's own worker processes (the `lane` fixture): each says, once booted,
how many objects it froze (`entrypoints.heap.keep_boot_heap`), and that count holds the
boot's imports (litellm's, mostly), not a handful.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def frozen_counts(log: Path) -> list[int]:
    """`frozen_objects` of each `boot_heap_frozen` line in a worker's log (JSON lines)."""
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [int(line["frozen_objects"]) for line in lines if line.get("event") == "boot_heap_frozen"]


def test_every_procfile_worker_freezes_its_boot_heap(lane: Any) -> None:
    logs = lane.store_dir.parent
    for name in ("worker", "interactive"):
        counts = frozen_counts(logs / f"{name}.log")
        assert counts, f"the {name} process logged no boot_heap_frozen line"
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
