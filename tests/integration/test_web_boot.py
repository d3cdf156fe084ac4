"""The web process keeps what it built at startup out of the garbage collector's full passes.

Checked on the Procfile's own `web` line (uvicorn with the app factory, its lifespan on, as
production runs it): once started it says how many objects it froze
(`entrypoints.heap.keep_boot_heap`), and that count holds the app and its imports.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.fixtures.lane import procfile_command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _frozen_counts(log: Path) -> list[int]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [int(line["frozen_objects"]) for line in lines if line.get("event") == "boot_heap_frozen"]


def test_the_procfile_web_process_freezes_its_boot_heap(tmp_path: Path) -> None:
    port = _free_port()
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
        # tracks ~20,000 objects; the app ~150,000)
        counts = _frozen_counts(log)
        assert len(counts) == 1, log.read_text()[-3000:]
        assert counts[0] > 80_000, counts
    finally:
        proc.terminate()
        proc.wait(timeout=30)
