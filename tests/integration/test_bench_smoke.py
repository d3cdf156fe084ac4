"""The benchmarks still run: the overhead benchmark's quick version, end to end, on its own servers."""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from bench import overhead
from bench.report import split_sections, write_results


def test_importing_the_benchmarks_leaves_the_services_broker_global() -> None:
    # (Actors declared after a module sets another global broker would never reach a worker.)
    import dramatiq

    import bench.run_all  # noqa: F401  (every benchmark module)
    from entrypoints import compose

    broker = compose.process_broker()

    assert dramatiq.get_broker() is broker


def test_overhead_benchmark_runs_the_pipeline_beside_its_floors(tmp_path: Path) -> None:
    # Given the overhead benchmark on a few jobs (its own Redis, dev gateway and Procfile worker)
    # When it runs two rounds
    section = overhead.run(40, rounds=2, quick=True, progress=False)
    # Then every job of both rounds was written (products of their own: 80 model calls), the floors
    # and the pipeline have their rows with the range of their two rates, and it judged the target
    rows = {row[0]: row for row in section.rows}
    assert set(rows) == {
        "queue floor: Dramatiq no-op",
        "worker floor: Dramatiq actor, one call",
        "client floor: litellm",
        "client floor: gateway client",
        "pipeline: product copy",
    }
    assert all(float(row[3].replace(",", "")) > 0 for row in section.rows), section.rows
    assert any("80 jobs done, 0 failed; 80 model calls" in note for note in section.notes), section.notes
    assert all(" to " in row[4] for row in section.rows), section.rows
    # And the verdict's ratio is the median of the two rounds' own ratios, each listed
    note = next(note for note in section.notes if note.startswith("pipeline = "))
    found = re.match(r"pipeline = ([\d.]+)% .*?ratio \(([\d.]+)%, ([\d.]+)%\)", note)
    assert found, note
    median, first, second = (float(x) for x in found.groups())
    assert abs(median - statistics.median([first, second])) <= 0.1, note
    judged = (
        re.search(r"\((\d+)%, the median\)", section.verdicts[0][0]) if len(section.verdicts) == 1 else None
    )
    assert judged and abs(int(judged.group(1)) - median) <= 1, section.verdicts
    # And RESULTS.md regenerates around a section another benchmark wrote
    results = tmp_path / "RESULTS.md"
    results.write_text("# old\n\n## 3. Someone else's table\n\n| a |\n|---|\n| 1 |\n## 0. First\n")
    write_results([section], results)
    sections = split_sections(results.read_text())
    assert list(sections) == ["0. First", section.title, "3. Someone else's table"]
    assert "| 1 |" in sections["3. Someone else's table"]


def test_bench_client_reads_each_finished_jobs_run_time(redis_server: Any, redis_client: Any) -> None:
    from bench.client import Client

    # Given three job statuses: one finished 2.5 s after it started, one still running, one unknown
    redis_client.hset("wandstore:job:a", mapping={"started_at": 100.0, "finished_at": 102.5})
    redis_client.hset("wandstore:job:b", mapping={"started_at": 100.0})
    client = Client(redis_server.url)
    try:
        # When the concurrency benchmark reads their run times
        times = client.run_times(["a", "b", "missing"])
    finally:
        client.close()
    # Then only the finished job counts, with its own start-to-end time
    assert times == [2.5]
