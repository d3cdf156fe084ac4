"""A worker process SIGKILLed in the middle of model calls, then restarted: every job completes once."""

from __future__ import annotations

from tests.faults.env import FaultEnv, copy_duplicates, unique_product
from tests.faults.report import scenario

KILLS = 3
JOBS_PER_KILL = 10


def test_sigkilled_worker_loses_nothing_and_doubles_nothing(env: FaultEnv) -> None:
    tally = scenario(
        "worker SIGKILL mid model calls",
        "`kill -9` of the worker's process group while model calls are in flight (gateway latency "
        "400 ms), restarted at once; product_copy",
    )
    # Given a gateway slow enough that calls are in flight when the worker dies
    env.gateway.config(latency_ms=400)
    jobs: dict[str, tuple[str, str]] = {}
    for kill in range(KILLS):
        # When jobs are accepted and the worker is SIGKILLed while their calls are in flight
        started = env.gateway.stats()["requests"]
        for i in range(JOBS_PER_KILL):
            store, product = unique_product(f"k{kill}x{i}", kill * JOBS_PER_KILL + i)
            jobs[env.submit_copy(store, product)] = (store, str(product["id"]))
        env.wait_gateway_requests(started + 3)
        env.worker.kill()
        env.worker.start()
    outcome = env.wait_terminal(list(jobs), timeout_s=90)
    duplicates = copy_duplicates(env, jobs, outcome)
    stats, ledger = env.gateway.stats(), env.ledger()
    tally.add(
        sent=len(jobs),
        completed=len(outcome.completed),
        failed=len(outcome.failed),
        lost=len(outcome.lost),
        duplicated=len(duplicates),
        runs=KILLS,
    )
    tally.note("kills", KILLS)
    tally.note("jobs redelivered", sum(1 for i in outcome.infos.values() if int(i.get("attempts", 0)) > 1))
    tally.note(
        "answers cut off by a kill (uncounted)",
        stats["model_calls"] - (ledger["calls"] - ledger["gateway_cache_hits"]),
    )

    # Then every accepted job was published exactly once, by itself, and nothing was counted twice
    assert not outcome.lost, outcome.lost
    assert not duplicates, duplicates
    assert outcome.failed == [], {j: outcome.infos[j]["error"] for j in outcome.failed}
    # and every completed job's calls are in the ledger (a redelivery repeats the same record ids)
    counted_jobs = {job for job, _, _ in env.counted_records()}
    assert set(outcome.completed) <= counted_jobs
