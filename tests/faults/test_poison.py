"""Poison messages go to the dead-letter queue after one try, with the reason, and harm no other job."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pipelines.dead_letters import DeadLetters
from tests.faults.env import FaultEnv, unique_product
from tests.faults.report import scenario
from tests.faults.worker import wait_until

RUNS = 3
GOOD_PER_RUN = 6


def _message(**fields: Any) -> bytes:
    base = {
        "queue_name": "batch",
        "actor_name": "product_copy",
        "args": [],
        "kwargs": {},
        "options": {},
        "message_id": str(uuid.uuid4()),
        "message_timestamp": 1,
    }
    return json.dumps({**base, **fields}).encode()


UNDECODABLE: list[tuple[str, bytes]] = [
    ("not JSON", b"\xff\xfe\x00 definitely not json"),
    ("JSON, not a message", b'{"hello": "world"}'),
    ("a JSON array", b"[1, 2, 3]"),
    ("args not a list", _message(args="stanley1913")),
    ("options not an object", _message(args=["s", {}, {}], options="eta=now")),
    ("message_id not a string", _message(message_id=42)),
]


def _decodable(product: dict[str, Any]) -> list[tuple[str, str, tuple[Any, ...], dict[str, Any], str]]:
    """(case, actor, args, kwargs, what the reason must say)."""
    return [
        ("unknown actor", "product_copyy", ("stanley1913", product, {}), {}, "ActorNotFound"),
        (
            "one argument too many",
            "product_copy",
            ("stanley1913", product, {}, "extra"),
            {},
            "arguments do not fit",
        ),
        (
            "unknown keyword argument",
            "product_copy",
            ("stanley1913", product),
            {"colour": "red"},
            "arguments do not fit",
        ),
        ("missing argument", "build_theme", ("stanley1913",), {}, "arguments do not fit"),
        (
            "product without an id",
            "product_copy",
            ("stanley1913", {"title": "no id"}, {}),
            {},
            "id: Field required",
        ),
        ("store slug with ../", "product_copy", ("../etc", product, {}), {}, "store slug"),
        (
            "product id with a slash",
            "product_copy",
            ("stanley1913", {**product, "id": "a/../b"}, {}),
            {},
            "product id",
        ),
        (
            "unknown option",
            "product_copy",
            ("stanley1913", product, {"temperature": 2}),
            {},
            "invalid options",
        ),
        ("product is a string", "product_copy", ("stanley1913", "<script>", {}), {}, "must be a JSON object"),
        ("theme brief not an object", "build_theme", ("stanley1913", ["x"]), {}, "brief"),
    ]


def test_poison_messages_are_dead_lettered_once_with_their_reason(env: FaultEnv) -> None:
    tally = scenario(
        "poison messages",
        "undecodable bodies, wrong field types, unknown actor, arguments that do not fit, schema-invalid "
        "payloads; sent between good jobs",
    )
    good_tally = scenario("good jobs among poison", "valid product_copy jobs in the same queue as the poison")
    dead = DeadLetters(env.client)
    for run in range(RUNS):
        env.reset()
        good: dict[str, tuple[str, str]] = {}
        poison: dict[str, str] = {}  # job id -> what its reason must say
        undecodable = 0
        # Given poison interleaved with good jobs on the same queue
        for i in range(GOOD_PER_RUN):
            store, product = unique_product(f"p{run}x{i}", i)
            good[env.submit_copy(store, product)] = (store, str(product["id"]))
            if i < len(UNDECODABLE):
                env.broker.do_enqueue("batch", str(uuid.uuid4()), UNDECODABLE[i][1])
                undecodable += 1
        _, product = unique_product(f"p{run}bad", 0)
        for _case, actor, args, kwargs, says in _decodable(product):
            poison[env.send_raw(actor, "batch", *args, **kwargs)] = says
        # When the worker has been through them
        outcome = env.wait_terminal([*good, *poison], timeout_s=60)
        wait_until(lambda: dead.count("batch") >= len(poison) + undecodable, 20, "dead letters")  # noqa: B023
        letters = dead.list("batch")
        by_id = {d.id: d for d in letters}
        undecodable_letters = [d for d in letters if d.message is None]
        reasons_ok = [j for j in poison if j in by_id and poison[j] in by_id[j].reason]
        tally.add(
            sent=len(poison) + undecodable,
            completed=0,
            failed=len(reasons_ok) + sum(1 for d in undecodable_letters if "undecodable message" in d.reason),
            lost=len(poison) + undecodable - len(reasons_ok) - len(undecodable_letters),
            duplicated=sum(1 for j in poison if int(outcome.infos[j].get("attempts", 0)) > 1),
        )
        good_tally.add(
            sent=len(good),
            completed=sum(j in outcome.completed for j in good),
            failed=sum(j in outcome.failed for j in good),
            lost=sum(j in outcome.lost for j in good),
            duplicated=0,
        )
        # Then every good job was published, untouched by the poison around it
        assert all(j in outcome.completed for j in good), {j: outcome.infos[j] for j in good}
        # and every poison message is a dead letter after exactly one try, with a reason that says why
        for job, says in poison.items():
            info = outcome.infos[job]
            assert info["status"] == "failed" and info["attempts"] == 1, info
            assert says in info["error"], (says, info["error"])
            assert job in by_id and says in by_id[job].reason, (says, by_id.get(job))
        assert len(undecodable_letters) == undecodable
        assert all(d.reason.startswith("undecodable message: ") for d in undecodable_letters)
        assert len(letters) == len(poison) + undecodable
        # and nothing is left claimed or queued
        assert env.client.llen("dramatiq:batch") == 0
