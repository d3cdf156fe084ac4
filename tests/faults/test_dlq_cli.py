"""`wandstore-agents dlq list | show | replay | purge` against a worker that dead-lettered real jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from pipelines.dead_letters import DeadLetters
from tests.faults.env import FaultEnv, unique_product
from tests.faults.worker import wait_until

CLI = str(Path(sys.executable).with_name("wandstore-agents"))


def dlq(env: FaultEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real CLI against our Redis."""
    environ = {**os.environ, "REDIS_URL": env.redis_server.url, "COLUMNS": "200"}
    return subprocess.run(
        [CLI, "dlq", *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


def dlq_json(env: FaultEnv, *args: str) -> Any:
    done = dlq(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_dead_letters_are_listed_shown_replayed_and_purged(env: FaultEnv) -> None:
    # Given four dead letters: a rate-limit storm past the retry limit, a product without an id,
    # a body that does not decode, and an unknown actor on the interactive queue
    store, product = unique_product("dlqstorm", 0)
    env.gateway.faults([{"kind": "429", "retry_after": 0.05, "match": "dlqstorm", "times": 7}])
    storm = env.submit_copy(store, product)
    invalid = env.send_raw("product_copy", "batch", "stanley1913", {"title": "no id"}, {})
    env.broker.do_enqueue("batch", str(uuid.uuid4()), b"\x00garbage")
    stray = env.send_raw("personalise", "interactive", "stanley1913", "shopper-1", {})
    env.wait_terminal([storm, invalid, stray], timeout_s=60)
    dead = DeadLetters(env.client)
    wait_until(lambda: dead.count() == 4, 20, "four dead letters")

    # When ops list them
    listed = {d["id"]: d for d in dlq_json(env, "list")["dead_letters"]}
    # Then each says what failed, why, when and after how many tries
    assert len(listed) == 4
    assert listed[storm]["attempts"] == 7 and listed[storm]["reason"].startswith("RateLimited: ")
    assert listed[invalid]["attempts"] == 1 and "id: Field required" in listed[invalid]["reason"]
    assert listed[stray]["queue"] == "interactive" and listed[stray]["reason"] == "ActorNotFound: personalise"
    garbage = [d for d in listed.values() if not d["replayable"]]
    assert len(garbage) == 1 and garbage[0]["reason"].startswith("undecodable message: ")
    assert all(d["dead_at"].endswith("Z") for d in listed.values())
    assert [d["id"] for d in dlq_json(env, "list", "--queue", "interactive")["dead_letters"]] == [stray]
    table = dlq(env, "list")
    assert table.returncode == 0 and storm in table.stdout and "RateLimited" in table.stdout

    # and look at one in full
    shown = dlq_json(env, "show", storm)
    assert shown["actor"] == "product_copy" and shown["args"][0] == store
    assert shown["args"][1]["id"] == product["id"]

    # When the storm is over and its job is replayed
    replayed = dlq(env, "replay", storm)
    assert replayed.returncode == 0, replayed.stderr
    info = env.wait_terminal([storm], timeout_s=30).infos[storm]
    # Then it runs once more, as the same job, and publishes
    assert info["status"] == "done" and info["attempts"] == 8 and info["replays"] == "1", info
    assert f"stores/{store}/products/{product['id']}/copy.json" in env.objects()
    assert "RateLimited" in info["last_error"]
    # and its call is new spend in the ledger, not taken for a redelivery of the first run
    assert {a for j, a, _ in env.counted_records() if j == storm} == {"r1.0"}

    # When everything left on batch is replayed: the invalid job fails again, the garbage is skipped
    replay_all = dlq(env, "replay", "--all", "--queue", "batch")
    assert replay_all.returncode == 0 and f"replayed {invalid}" in replay_all.stdout
    assert "skipped" in replay_all.stdout
    wait_until(
        lambda: (env.status.get(invalid) or {}).get("status") == "failed", 20, "the replayed job to fail"
    )
    wait_until(lambda: dead.count() == 3, 20, "the invalid job back in the dead-letter queue")
    assert env.status.get(invalid)["attempts"] == 2  # type: ignore[index]

    # When ops purge
    purged = dlq(env, "purge", "--yes")
    # Then nothing is left
    assert purged.returncode == 0 and "purged 3" in purged.stdout
    assert dlq_json(env, "list")["dead_letters"] == []
    missing = dlq(env, "show", storm)
    assert missing.returncode != 0 and "no dead letter" in missing.stderr
