"""The model gateway failing every way it does: jobs retry with jittered backoff, within limits, once."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from tests.faults.env import FaultEnv, copy_duplicates, log_time, unique_product
from tests.faults.report import Tally, scenario

RUNS = 2
RETRY_LIMIT = 6  # pipelines.middleware.RETRY_LIMIT: 7 attempts in all

# name, fault spec, faults per job (one job per entry), lower bound of each retry's delay (ms)
KINDS: list[tuple[str, str, dict[str, Any], list[int], int]] = [
    ("429 with retry-after", "429, `retry-after: 0.2`", {"kind": "429", "retry_after": 0.2}, [1, 2, 3], 200),
    ("429 without retry-after", "429, no `retry-after`", {"kind": "429"}, [1, 2], 250),
    ("gateway 5xx", "500 and 503", {"kind": "503"}, [1, 2], 250),
    (
        "gateway timeout",
        "no answer within GATEWAY_TIMEOUT_S (3 s)",
        {"kind": "timeout", "latency_ms": 6000},
        [1],
        250,
    ),
    ("malformed JSON", "200 with an HTML body", {"kind": "malformed_json"}, [1, 2], 250),
    ("truncated body", "200 with half a JSON body", {"kind": "truncated"}, [1, 2], 250),
    (
        "429 storm past the retry limit",
        "429 (`retry-after: 0.1`) on all 7 attempts",
        {"kind": "429", "retry_after": 0.1},
        [RETRY_LIMIT + 1],
        100,
    ),
]


def _gaps(env: FaultEnv, job: str) -> list[float]:
    """Seconds between a job's consecutive attempts, from the worker's own log lines."""
    ends = sorted(log_time(e) for e in env.log_events("job_retrying") if e.get("job_id") == job)
    return [b - a for a, b in itertools.pairwise(ends)]


def test_gateway_faults_are_retried_with_jittered_backoff_within_limits(env: FaultEnv) -> None:
    tallies: dict[str, Tally] = {name: scenario(name, spec) for name, spec, *_ in KINDS}
    for run in range(RUNS):
        env.reset()
        # Given each job's calls meet its own planned faults (matched by a tag in its product)
        plan: dict[str, tuple[str, int, int]] = {}  # job -> (kind, faults, min delay ms)
        jobs: dict[str, tuple[str, str]] = {}
        faults = []
        planned = []
        n = 0
        for k, (name, _, fault, per_job, floor_ms) in enumerate(KINDS):
            for j, count in enumerate(per_job):
                tag = f"g{run}k{k}j{j}q"
                store, product = unique_product(tag, n)
                n += 1
                spec = dict(fault)
                if name == "gateway 5xx" and j % 2:
                    spec["kind"] = "500"
                faults.append({**spec, "match": tag, "times": count})
                planned.append((store, product, name, count, floor_ms))
        # The faults are in place before the first job can reach the gateway.
        env.gateway.faults(faults)
        for store, product, name, count, floor_ms in planned:
            job = env.submit_copy(store, product)
            jobs[job] = (store, str(product["id"]))
            plan[job] = (name, count, floor_ms)
        # When the jobs run through the faults
        outcome = env.wait_terminal(list(jobs), timeout_s=60)
        duplicates = copy_duplicates(env, jobs, outcome)
        stats = env.gateway.stats()
        for name, *_ in KINDS:
            mine = [j for j in jobs if plan[j][0] == name]
            tallies[name].add(
                sent=len(mine),
                completed=sum(j in outcome.completed for j in mine),
                failed=sum(j in outcome.failed for j in mine),
                lost=sum(j in outcome.lost for j in mine),
                duplicated=sum(any(p.startswith(j) or jobs[j][1] in p for p in duplicates) for j in mine),
            )
            tallies[name].note(
                "gateway requests", sum(int(outcome.infos[j].get("attempts", 0)) for j in mine)
            )

        # Then no job is lost or doubled
        assert not outcome.lost, outcome.lost
        assert not duplicates, duplicates
        # and one retry layer: one gateway request per attempt (no litellm retries underneath)
        attempts = sum(int(i.get("attempts", 0)) for i in outcome.infos.values())
        assert stats["requests"] == attempts, (stats["requests"], attempts)
        assert stats["faults_served"] == sum(count for _, count, _ in plan.values())
        # and the worker logged every retry, one whole JSON line each (they arrive through the
        # dramatiq parent process, a moment later)
        retried = {j for j in jobs if int(outcome.infos[j].get("attempts", 0)) > 1}
        expected = sum(int(outcome.infos[j]["attempts"]) - 1 for j in retried)
        assert len(env.wait_log_events("job_retrying", retried, expected)) == expected
        assert env.broken_log_lines() == [], env.broken_log_lines()[:3]
        gaps: list[float] = []
        for job, (name, count, floor_ms) in plan.items():
            info = outcome.infos[job]
            if count <= RETRY_LIMIT:
                # each fault cost exactly one attempt, then the job succeeded
                assert info["status"] == "done", (name, info)
                assert info["attempts"] == count + 1, (name, info)
            else:
                # past the limit: failed after 7 attempts, with the reason, and nothing published
                assert info["status"] == "failed" and info["attempts"] == RETRY_LIMIT + 1, info
                assert info["error"].startswith("RateLimited: rate limited by the gateway"), info
            job_gaps = _gaps(env, job)
            # every retry waited at least its backoff (retry-after honoured)
            assert all(g * 1000 >= floor_ms - 20 for g in job_gaps), (name, job_gaps)
            gaps.extend(job_gaps)
        # and the waits are jittered, not in lock-step
        assert len(gaps) >= 2 and statistics.pstdev(gaps) > 0.02, gaps
