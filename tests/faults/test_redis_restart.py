"""The Redis server SIGKILLed and restarted (AOF, fsync always) while jobs run: no accepted job is lost."""

from __future__ import annotations

import time

from tests.faults.env import FaultEnv, copy_duplicates, unique_product
from tests.faults.report import scenario

RESTARTS = 3
JOBS_PER_RESTART = 10
OUTAGE_S = 1.0  # how long Redis stays down: the fault itself, not a wait for a result


def test_redis_killed_mid_run_loses_no_accepted_job(env: FaultEnv) -> None:
    tally = scenario(
        "Redis SIGKILL and restart",
        f"`kill -9` of valkey-server (AOF, appendfsync always) while model calls are in flight, "
        f"down {OUTAGE_S:g} s, restarted on the same data; product_copy",
    )
    # Given a gateway slow enough that jobs are mid-call when Redis dies
    env.gateway.config(latency_ms=300)
    jobs: dict[str, tuple[str, str]] = {}
    for restart in range(RESTARTS):
        started = env.gateway.stats()["requests"]
        for i in range(JOBS_PER_RESTART):
            store, product = unique_product(f"r{restart}x{i}", restart * JOBS_PER_RESTART + i)
            jobs[env.submit_copy(store, product)] = (store, str(product["id"]))
        env.wait_gateway_requests(started + 3)
        # When Redis is killed and comes back on its append-only file
        env.redis_server.kill()
        time.sleep(OUTAGE_S)
        env.redis_server.start()
    outcome = env.wait_terminal(list(jobs), timeout_s=90)
    duplicates = copy_duplicates(env, jobs, outcome)
    tally.add_outcome(outcome, sent=len(jobs), duplicated=len(duplicates), runs=RESTARTS)
    tally.note("Redis restarts", RESTARTS)
    tally.note("jobs retried", sum(1 for i in outcome.infos.values() if int(i.get("attempts", 0)) > 1))
    # Then every accepted job ended, published once or failed with its reason
    assert not outcome.lost, {j: (outcome.infos[j], env.job_log(j)) for j in outcome.lost}
    assert not duplicates, duplicates
    assert env.worker.running
