"""Drafts in the pipeline: one review item per product, a redelivered job writes its draft once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import sample_products
from tests.fixtures.stores import add_store
from tests.helpers import arun


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


STORE = "drafts-pipeline"


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_a_newer_draft_of_a_product_supersedes_the_one_still_waiting(services: Any, gateway: Any) -> None:
    from pipelines.drafts import Drafts
    from pipelines.product_copy import generate_product_copy

    add_store(services.redis, STORE, publish={"copy": "review", "theme": "review"})
    product = sample_products("stanley1913")[3]
    # When copy for one product is generated twice before anyone reviewed it
    first = arun(generate_product_copy(services, STORE, product))
    second = arun(generate_product_copy(services, STORE, product, {"force_fresh": True}))
    drafts = Drafts(services.redis, services.store)
    # Then only the newer one waits; the older one says why it was set aside (and is no feedback)
    pending = drafts.list(STORE, status="pending", product=str(product["id"]))
    assert [d["id"] for d in pending] == [second.draft_id]
    older = drafts.get(STORE, first.draft_id)
    assert older["status"] == "rejected" and older["decisions"][-1]["action"] == "supersede"
    assert second.draft_id in older["decisions"][-1]["reason"] and "feedback" not in older


def test_a_redelivered_job_writes_its_draft_once_and_a_live_one_stays_live(
    services: Any, gateway: Any
) -> None:
    from pipelines.drafts import Drafts
    from pipelines.product_copy import generate_product_copy

    add_store(services.redis, STORE)  # copy auto
    product = sample_products("stanley1913")[4]
    once = arun(
        generate_product_copy(services, STORE, product, job_id="0b7c7d10-1a4e-4a4f-8d56-1c1c1c1c1c1c")
    )
    twice = arun(
        generate_product_copy(services, STORE, product, job_id="0b7c7d10-1a4e-4a4f-8d56-1c1c1c1c1c1c")
    )
    assert once.draft_id == twice.draft_id and once.live and twice.live
    rows = Drafts(services.redis, services.store).list(STORE, product=str(product["id"]))
    assert [r["id"] for r in rows] == [once.draft_id] and rows[0]["status"] == "live"
    live = services.store.get(f"stores/{STORE}/products/{product['id']}/copy.json").json()
    assert live["meta"]["draft_id"] == once.draft_id


# --- `Drafts.propose`: create, newest, supersede and the states, in one script ----------------

PROPOSE_STORE = "drafts-propose"


def _draft(n: int, *, product: str = "p1", auto: bool = False, ts: float | None = None) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "store": PROPOSE_STORE,
        "kind": "copy",
        "product_id": product,
        "job_id": f"job-{n}",
        "created_ts": ts if ts is not None else 1_700_000_000.0 + n,
        "auto": auto,
        "body": {"title": f"draft {n}"},
        "checks": [{"name": "title_length", "passed": True, "detail": ""}],
        "meta": {"prompt_ref": "product_copy@1"},
        "shopify": {"status": "off"},
    }


def test_propose_keeps_a_new_draft_and_names_the_older_pending_one(services: Any) -> None:
    from pipelines.drafts import INDEX, Drafts

    drafts = Drafts(services.redis, services.store)
    first = drafts.propose(_draft(1), "copy:p1")
    assert (first.created, first.status, first.older) == (True, "pending", None)
    # The row and the body are what `create` writes
    state = drafts.state(PROPOSE_STORE, _draft(1)["id"])
    assert state["kind"] == "copy" and state["status"] == "pending" and state["product_id"] == "p1"
    assert state["auto"] is False and state["checks_passed"] is True and state["shopify"] == {"status": "off"}
    assert drafts.get(PROPOSE_STORE, _draft(1)["id"])["body"] == {"title": "draft 1"}
    # A newer draft of the same product names the older pending one; another product's does not
    second = drafts.propose(_draft(2), "copy:p1")
    assert (second.created, second.status, second.older) == (True, "pending", _draft(1)["id"])
    other = drafts.propose(_draft(3, product="p2"), "copy:p2")
    assert other.older is None
    newest = services.redis.hgetall(f"{INDEX}{PROPOSE_STORE}:newest")
    assert {k.decode() if isinstance(k, bytes) else k for k in newest} == {"copy:p1", "copy:p2"}
    assert _text(services.redis.hget(f"{INDEX}{PROPOSE_STORE}:newest", "copy:p1")) == _draft(2)["id"]


def test_propose_of_a_redelivered_draft_indexes_and_supersedes_nothing(services: Any) -> None:
    from pipelines.drafts import INDEX, Drafts

    drafts = Drafts(services.redis, services.store)
    drafts.propose(_draft(1), "copy:p1")
    drafts.propose(_draft(2), "copy:p1")
    # When the first job is delivered again (its draft exists)
    again = drafts.propose(_draft(1, ts=1_800_000_000.0), "copy:p1")
    # Then it says so, with the status it has, and touches neither the index nor the newest draft
    assert (again.created, again.status, again.older) == (False, "pending", None)
    assert services.redis.zscore(INDEX + PROPOSE_STORE, _draft(1)["id"]) == 1_700_000_001.0
    assert services.redis.zcard(INDEX + PROPOSE_STORE) == 2
    assert _text(services.redis.hget(f"{INDEX}{PROPOSE_STORE}:newest", "copy:p1")) == _draft(2)["id"]
    # And a draft that went live (or was decided) meanwhile reports that status
    drafts.move(PROPOSE_STORE, _draft(2)["id"], allowed=("pending",), to="live", live_target="copy:p1")
    assert drafts.propose(_draft(2), "copy:p1").status == "live"
    drafts.move(PROPOSE_STORE, _draft(1)["id"], allowed=("pending",), to="rejected")
    assert drafts.propose(_draft(1), "copy:p1").status == "rejected"


@pytest.mark.parametrize("older_is", ["auto", "live", "rejected", "gone"])
def test_propose_leaves_an_older_draft_alone_unless_it_waits_for_review(services: Any, older_is: str) -> None:
    from pipelines.drafts import Drafts

    drafts = Drafts(services.redis, services.store)
    older_id = _draft(1)["id"]
    drafts.propose(_draft(1, auto=older_is == "auto"), "copy:p1")
    if older_is in ("live", "rejected"):
        drafts.move(PROPOSE_STORE, older_id, allowed=("pending",), to=older_is, live_target="copy:p1")
    if older_is == "gone":
        services.redis.delete(f"wandstore:draft:{PROPOSE_STORE}:{older_id}")
    # When a newer draft of the product is proposed
    newer = drafts.propose(_draft(2), "copy:p1")
    # Then the older one is not named for superseding: on its way live itself, decided, or gone
    assert newer.created and newer.status == "pending" and newer.older is None
    if older_is != "gone":
        assert drafts.state(PROPOSE_STORE, older_id)["status"] == (
            "pending" if older_is == "auto" else older_is
        )


MUG_COPY = {
    "title": "A mug",
    "description_html": "<p>Keeps coffee warm.</p>",
    "bullets": ["Warm", "Steel", "Lid"],
    "seo_title": "A mug",
    "meta_description": "A steel mug that keeps coffee warm.",
    "image_alts": [],
}


def test_propose_copy_supersedes_through_the_script_and_a_redelivery_keeps_the_review_queue(
    services: Any,
) -> None:
    from pipelines.drafts import Drafts
    from pipelines.drafts_review import propose_copy

    add_store(services.redis, PROPOSE_STORE, publish={"copy": "review", "theme": "review"})
    product = {"id": 42, "title": "Mug", "body_html": "<p>Warm</p>", "updated_at": "2025-01-01T00:00:00Z"}
    body = dict(MUG_COPY)
    meta = {"pipeline": "product_copy", "input_hash": "sha256:x", "prompt_ref": "product_copy@1"}
    jobs = ["1b7c7d10-1a4e-4a4f-8d56-1c1c1c1c1c1c", "2b7c7d10-1a4e-4a4f-8d56-1c1c1c1c1c1c"]

    def propose(job: str) -> Any:
        return propose_copy(
            services.redis, services.store, store=PROPOSE_STORE, product=product, body=body,
            meta=meta, image_ids=[], job_id=job,
        )  # fmt: skip

    first, second = propose(jobs[0]), propose(jobs[1])
    assert not first.live and not second.live
    drafts = Drafts(services.redis, services.store)
    assert drafts.state(PROPOSE_STORE, first.draft_id)["status"] == "rejected"
    # A redelivery of the superseded job neither revives it nor sets the newer one aside
    assert propose(jobs[0]).live is False
    assert drafts.state(PROPOSE_STORE, first.draft_id)["status"] == "rejected"
    assert drafts.state(PROPOSE_STORE, second.draft_id)["status"] == "pending"
    assert [d["id"] for d in drafts.list(PROPOSE_STORE, status="pending")] == [second.draft_id]


def test_auto_copy_of_a_store_that_pushes_goes_live_queued_for_shopify_in_one_move(services: Any) -> None:
    from pipelines.drafts import Drafts
    from pipelines.drafts_review import propose_copy

    add_store(services.redis, PROPOSE_STORE, shopify_push=True)  # copy auto
    body = dict(MUG_COPY)
    made = propose_copy(
        services.redis, services.store, store=PROPOSE_STORE, product={"id": 43, "title": "Mug"}, body=body,
        meta={"pipeline": "product_copy", "input_hash": "sha256:x"}, image_ids=[],
        job_id="3b7c7d10-1a4e-4a4f-8d56-1c1c1c1c1c1c",
    )  # fmt: skip
    assert made.live and made.push
    draft = Drafts(services.redis, services.store).get(PROPOSE_STORE, made.draft_id)
    assert draft["status"] == "live" and draft["decisions"][-1]["action"] == "auto"
    assert draft["shopify"]["status"] == "queued" and draft["shopify"]["attempts"] == 0
    assert draft["shopify"]["queued_at"].endswith("Z")
