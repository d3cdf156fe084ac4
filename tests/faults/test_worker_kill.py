"""A worker process SIGKILLed in the middle of model calls, then restarted: every job completes once."""

from __future__ import annotations

from tests.faults.env import FaultEnv, approve_builds, copy_duplicates, unique_product
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
    # Each dead worker's jobs come back a heartbeat timeout after it died (15 s at the defaults).
    outcome = env.wait_terminal(list(jobs), timeout_s=150)
    duplicates = copy_duplicates(env, jobs, outcome)
    stats, ledger = env.gateway.stats(), env.ledger()
    tally.add_outcome(outcome, sent=len(jobs), duplicated=len(duplicates), runs=KILLS)
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


def test_sigterm_to_the_process_group_stops_the_worker_gracefully(env: FaultEnv) -> None:
    import time

    tally = scenario(
        "worker SIGTERM to its process group",
        "a deploy's stop (Heroku, systemd, `kill -- -PGID`): every process of the group gets "
        "SIGTERM, so Dramatiq's worker process gets it twice; model calls in flight (gateway "
        "latency 800 ms); restarted after it exits; product_copy",
    )
    # Given jobs in flight and more queued behind them
    env.gateway.config(latency_ms=800)
    jobs: dict[str, tuple[str, str]] = {}
    for i in range(40):
        store, product = unique_product(f"t{i}", 1000 + i)
        jobs[env.submit_copy(store, product)] = (store, str(product["id"]))
    env.wait_gateway_requests(env.gateway.stats()["requests"] + 3)
    # When the whole process group is sent SIGTERM
    began = time.monotonic()
    exited = env.worker.stop(timeout_s=30)
    stop_s = time.monotonic() - began
    failed_during_stop = [j for j in jobs if (env.status.get(j) or {}).get("status") == "failed"]
    env.worker.start()
    outcome = env.wait_terminal(list(jobs), timeout_s=90)
    duplicates = copy_duplicates(env, jobs, outcome)
    tally.add_outcome(outcome, sent=len(jobs), duplicated=len(duplicates), runs=1)
    tally.note("seconds from SIGTERM to exit", round(stop_s, 1) if exited else "never (SIGKILLed)")

    # Then it finished what it was doing and exited by itself, failing nothing on the way out
    log_tail = env.worker.output()[-3000:]
    assert exited, f"the worker was still running {stop_s:.0f} s after SIGTERM:\n{log_tail}"
    assert failed_during_stop == [], {j: env.status.get(j) for j in failed_during_stop}
    # and after the restart every job was published once
    assert not outcome.lost, outcome.lost
    assert outcome.failed == [], {j: outcome.infos[j]["error"] for j in outcome.failed}
    assert not duplicates, duplicates
    from pipelines.dead_letters import DeadLetters

    assert DeadLetters(env.client).count() == 0


def test_sigkilled_worker_mid_theme_build_and_personalization(env: FaultEnv) -> None:
    import json

    from pipelines.submit import submit_personalize, submit_theme_build
    from pipelines.theme_build import save_catalog
    from tests.faults.env import sample_products

    tally = scenario(
        "worker SIGKILL mid theme build / personalization",
        "`kill -9` of the worker twice while theme builds (many calls each) and personalizations "
        "are in flight (gateway latency 300 ms); builds resume from their saved steps",
    )
    env.gateway.config(latency_ms=300)
    themes: dict[str, str] = {}
    for store in ("stanley1913", "electricshop"):
        save_catalog(env.reader, store, {"products": sample_products(store)[:8]})
        brief = {"description": f"Honest everyday goods from {store}; calm and warm."}
        themes[submit_theme_build(env.broker, env.status, store, brief)] = store  # type: ignore[arg-type]
    shoppers: dict[str, str] = {}
    for i in range(3):
        candidates = [
            {
                "id": str(p["id"]),
                "title": p["title"],
                "product_type": p.get("product_type", ""),
                "price": "10",
            }
            for p in sample_products("kiids-kingdom")[i : i + 6]
        ]
        job = submit_personalize(
            env.broker, env.status, "kiids-kingdom", f"kill-shopper-{i}", {"candidates": candidates}
        )  # type: ignore[arg-type]
        shoppers[job] = f"kill-shopper-{i}"
    # When the worker is SIGKILLed twice while their calls are in flight
    for _ in range(2):
        env.wait_gateway_requests(env.gateway.stats()["requests"] + 3)
        env.worker.kill()
        env.worker.start()
    outcome = env.wait_terminal([*themes, *shoppers], timeout_s=150)
    # And the merchant approves the finished builds (themes wait for review)
    approve_builds(env, env.reader, {j: s for j, s in themes.items() if j in outcome.completed})
    # Then every build is published once, whole, and current; every shopper has one output
    problems = []
    for job, store in themes.items():
        builds = {k.split("/")[3] for k in env.objects(f"themes/{store}/builds/")}
        if builds != {job}:
            problems.append(f"{store}: builds {sorted(builds)} for job {job}")
        if job in outcome.completed:
            pointer = json.loads(env.reader.get(f"themes/{store}/current.json").body)
            listed = json.loads(env.reader.get(f"{pointer['prefix']}theme.json").body)["files"]
            missing = [f for f in listed if not env.reader.exists(pointer["prefix"] + f)]
            if pointer["build_id"] != job or missing:
                problems.append(f"{store}: pointer {pointer['build_id']} missing {missing}")
    for job, shopper in shoppers.items():
        key = f"stores/kiids-kingdom/shoppers/{shopper}/personalization.json"
        if job in outcome.completed and not env.reader.exists(key):
            problems.append(f"{shopper}: done but {key} is missing")
    ledger, stats = env.ledger(), env.gateway.stats()
    if ledger["calls"] - ledger["gateway_cache_hits"] > stats["model_calls"]:
        problems.append("the ledger counts more fresh calls than the gateway answered")
    tally.add_outcome(outcome, sent=len(themes) + len(shoppers), duplicated=len(problems), runs=2)
    tally.note("kills", 2)
    tally.note("fallbacks served", sum(1 for j in shoppers if outcome.infos[j].get("fallback")))
    assert not outcome.lost, {j: outcome.infos[j] for j in outcome.lost}
    assert not problems, problems
    assert all(j in outcome.completed for j in themes), {j: outcome.infos[j] for j in themes}


AT_DEFAULTS_JOBS = 12
AT_DEFAULTS_LATENCY_MS = 2500


def test_sigkilled_worker_at_the_defaults_is_back_at_work_within_the_heartbeat_timeout(
    defaults: FaultEnv,
) -> None:
    import time

    from adapters.settings import Settings
    from tests.faults.env import log_time

    env = defaults
    timeout_s = Settings.model_fields["broker_heartbeat_timeout_ms"].default / 1000
    interval_s = Settings.model_fields["broker_maintenance_interval_ms"].default / 1000
    tally = scenario(
        "worker SIGKILL at the defaults",
        f"`kill -9` of the worker's process group while {AT_DEFAULTS_JOBS} product_copy jobs are "
        f"in their model calls (gateway latency {AT_DEFAULTS_LATENCY_MS / 1000:g} s), restarted at "
        f"once; nothing else runs (an idle fleet); heartbeat timeout {timeout_s:g} s, maintenance "
        f"every {interval_s:g} s",
    )
    # Given a worker at the production defaults with every job in its model call
    env.gateway.config(latency_ms=AT_DEFAULTS_LATENCY_MS)
    started = env.gateway.stats()["requests"]
    jobs: dict[str, tuple[str, str]] = {}
    for i in range(AT_DEFAULTS_JOBS):
        store, product = unique_product(f"d{i}", 2000 + i)
        jobs[env.submit_copy(store, product)] = (store, str(product["id"]))
    env.wait_gateway_requests(started + AT_DEFAULTS_JOBS, timeout_s=60)
    # When it is SIGKILLed and restarted at once
    killed_at, began = time.time(), time.monotonic()
    env.worker.kill()
    env.worker.start()
    outcome = env.wait_terminal(list(jobs), timeout_s=120)
    recovery_s = time.monotonic() - began
    requeued = [e for e in env.log_events("dead_worker_messages_requeued") if log_time(e) >= killed_at]
    duplicates = copy_duplicates(env, jobs, outcome)
    tally.add_outcome(outcome, sent=len(jobs), duplicated=len(duplicates), runs=1)
    tally.note("seconds from the kill to all published", round(recovery_s, 1))
    if requeued:
        tally.note("seconds from the kill to back on the queue", round(log_time(requeued[0]) - killed_at, 1))

    # Then every job was published once, within the heartbeat timeout plus a maintenance
    # interval plus the jobs' own model calls and the new worker's boot
    assert not outcome.lost, {j: outcome.infos[j] for j in outcome.lost}
    assert outcome.failed == [], {j: outcome.infos[j]["error"] for j in outcome.failed}
    assert not duplicates, duplicates
    assert requeued, "no dead_worker_messages_requeued in the worker log"
    # (a few seconds of slack: the new worker boots meanwhile, on a machine shared with others)
    assert log_time(requeued[0]) - killed_at <= timeout_s + interval_s + 5
    assert recovery_s <= timeout_s + interval_s + 20, f"{recovery_s:.1f} s"
