"""A worker process of the interactive lane takes no message before it is warm.

After a deploy a shopper's request may already wait in the queue when the lane's new process
starts. Taken by a cold process, it would wait seconds for litellm's import and the clients'
set-up, past its deadline. Checked on the Procfile's own `interactive` line, on a Redis of its
own: the request queued first starts only after the process logged `worker_warm`.
Settings changed from production: one process of 8 threads (the Procfile's 2 processes of 128 would only
slow the test), LOG_LEVEL=INFO (the suite's WARNING would hide the line).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.fixtures.lane import open_lane, procfile_command, start_worker, stop_lane
from tests.helpers import wait_job


def warm_times(log: Path) -> list[float]:
    """When each process of a worker's log (JSON lines) logged `worker_warm`, as Unix times."""
    lines = (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
    return [
        datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
        for line in lines
        if line.get("event") == "worker_warm"
    ]


def test_the_interactive_lane_takes_no_message_before_it_is_warm(
    dev_gateway: Any, shopify_server: Any, tmp_path: Path
) -> None:
    from pipelines.submit import submit_personalize

    lane = open_lane(tmp_path)
    try:
        # Given a shopper's request queued before the lane's process starts (a deploy)
        context = {"candidates": [{"id": f"boot-{n}", "title": f"Boot product {n}"} for n in range(3)]}
        job = submit_personalize(lane.broker, lane.status, "boot-store", "boot-shopper", context)
        # When the Procfile's interactive process starts
        command = procfile_command("interactive", processes="1", threads="8")
        start_worker(lane, "interactive", command, tmp_path, shopify_server.base_url)
        info = wait_job(lane.status, job, timeout_s=90)
        # Then the request was served, and started only once the process was warm
        warm = warm_times(tmp_path / "interactive.log")
        assert info["status"] == "done", info
        assert len(warm) == 1, f"worker_warm lines: {warm}"
        assert float(info["started_at"]) >= warm[0], (
            f"the request started {warm[0] - float(info['started_at']):.2f} s before the process was warm"
        )
    finally:
        stop_lane(lane)
