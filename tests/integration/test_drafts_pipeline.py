"""Drafts in the pipeline: one review item per product, a redelivered job writes its draft once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import sample_products
from tests.fixtures.stores import add_store
from tests.helpers import arun

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
