"""Profile a worker while a benchmark runs: py-spy's collapsed stacks, summed into top frames.

py-spy is a profiling tool, not a dependency: `pip install py-spy` into the virtualenv to use
`--profile`. Samples of idle threads (blocked on a queue or a socket) are left out.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextmanager
def profiled(pid: int, out: Path, rate: int = 200) -> Iterator[None]:
    """Record `pid` with py-spy into `out` (collapsed stacks) while the block runs."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    # --gil: sample only the thread holding the GIL, i.e. where the process spends its CPU.
    argv = [exe, "record", "-p", str(pid), "-o", str(out), "--format", "raw", "-r", str(rate)]
    proc = subprocess.Popen(
        [*argv, "--nonblocking", "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes what it has and exits
        _, err = proc.communicate(timeout=60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode()[-500:]}")


def _frames(stack: str) -> list[str]:
    out = []
    for frame in stack.split(";"):
        # "function (path/to/file.py:123)" -> "function (file.py)"; line numbers would split totals.
        name, _, where = frame.partition(" (")
        path = where.rsplit(":", 1)[0]
        short = "/".join(Path(path).parts[-2:]) if path else ""
        out.append(f"{name} ({short})" if short else name)
    return out


def top_frames(collapsed: Path, limit: int = 15) -> tuple[int, list[tuple[str, float, float]]]:
    """(samples, [(frame, self %, total %)]) from py-spy's collapsed output, by total time."""
    self_count: Counter[str] = Counter()
    total_count: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = _frames(stack)
        # Thread names py-spy puts first are not frames.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        self_count[frames[-1]] += count
        for frame in set(frames):
            total_count[frame] += count
    rows = [
        (frame, 100 * self_count[frame] / samples, 100 * total / samples)
        for frame, total in total_count.most_common(limit)
    ]
    return samples, rows


def top_self(collapsed: Path, limit: int = 15) -> list[tuple[str, float]]:
    """[(frame, self %)], the frames where the samples were taken."""
    self_count: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        frames = [f for f in _frames(stack) if not f.startswith(("process ", "thread "))]
        if frames:
            samples += int(count_text)
            self_count[frames[-1]] += int(count_text)
    return [(frame, 100 * count / max(samples, 1)) for frame, count in self_count.most_common(limit)]


# Where a product-copy worker's CPU goes, by what the code is doing (a sample counts for every
# group one of its frames belongs to, so the groups overlap: the event loop includes the rest).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("event loop: the pipeline coroutines", ("EventLoopThread.run ",)),
    ("  product facts and token budget", ("ProductCopyAgent.variables",)),
    ("  prompt render, worst-case token count", ("Prompt.render", "count_messages")),
    ("  model call (litellm, through the gateway client)", ("GatewayClient.complete",)),
    ("    litellm: its cost calculation", ("response_cost_calculator",)),
    ("    litellm: its logging payload", ("Logging.async_success_handler",)),
    ("  output validation and sanitizing", ("Agent._parse", "ProductCopyAgent.postprocess")),
    (
        "  result cache (get-or-lock, put-and-release)",
        (
            "ResultCache.get ",
            "ResultCache._get_or_acquire",
            "ResultCache._put_and_release",
            "ResultCache._unlock",
            "ResultCache.put ",
        ),
    ),
    ("  ledger (reserve, settle)", ("LedgerSink.reserve", "LedgerSink.settle")),
    # `Services.write`'s threads (docs/decisions/0028); litellm's set-up runs on the loop (0030).
    ("write threads: a job's draft and publishing", ("_WorkItem.run",)),
    ("  the draft (body, state, checks, inert source product)", ("propose_copy",)),
    ("    publishing copy.json (the store's policy: auto)", ("publish ",)),
    ("Dramatiq worker threads (middleware, hand-off)", ("WorkerThread.run ",)),
    ("  job status and follow-ups (JobTracking)", ("JobTracking.",)),
    ("Dramatiq consumer (fetch, decode, ack)", ("ConsumerThread.run ",)),
    ("Redis, anywhere (redis-py, both clients)", ("Redis.execute_command", "Pipeline.execute")),
    ("log lines (structlog)", ("BoundLoggerBase._proxy_to_logger",)),
)


def group_shares(collapsed: Path) -> tuple[int, list[tuple[str, float]]]:
    """(samples, [(group, % of samples)]) for `GROUPS`."""
    counts: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        frames = _frames(stack)
        for label, prefixes in GROUPS:
            if any(f.startswith(prefixes) for f in frames):
                counts[label] += count
    return samples, [(label, 100 * counts[label] / max(samples, 1)) for label, _ in GROUPS]
