"""A reviewer's rejection marks AI Gateway's logs of the calls behind the draft (the dev gateway's API)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.conftest import sample_products
from tests.fixtures.stores import add_store
from tests.helpers import arun

STORE = "feedback-shop"


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_a_rejection_is_sent_to_the_gateway_log_of_each_call_behind_the_draft(
    services: Any, gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.drafts import Drafts
    from pipelines.drafts_push import followup
    from pipelines.drafts_review import reject
    from pipelines.product_copy import generate_product_copy

    # Given a Cloudflare API token (the dev gateway answers the Cloudflare API's feedback call)
    monkeypatch.setattr(services.settings, "cf_api_token", SecretStr("cf-api-token-for-tests"))
    monkeypatch.setattr(services.settings, "cf_api_base_url", gateway.url + "/client/v4")
    # And a draft waiting for review, made by fresh model calls
    add_store(services.redis, STORE, publish={"copy": "review", "theme": "review"})
    made = arun(
        generate_product_copy(services, STORE, sample_products("electricshop")[0], {"force_fresh": True})
    )
    draft = Drafts(services.redis, services.store).get(STORE, made.draft_id)
    logs = draft["meta"]["gateway_log_ids"]
    assert logs and draft["status"] == "pending"
    # When the merchant rejects it, and the worker's follow-up runs
    decided = reject(
        services.redis, services.store, STORE, made.draft_id, by="test", reason="Wrong voice", to_gateway=True
    )
    assert decided["feedback"]["gateway"] == "pending"
    done = arun(followup(services, STORE, made.draft_id))
    # Then every call's log got negative feedback naming the draft, once
    assert done["feedback"] == "sent"
    received = httpx.get(gateway.url + "/_dev/feedback").json()["feedback"]
    mine = [f for f in received if f["metadata"]["draft_id"] == made.draft_id]
    assert sorted(f["log_id"] for f in mine) == sorted(logs)
    assert all(f["feedback"] == -1 and f["gateway"] == services.settings.ai_gateway_id for f in mine)
    assert arun(followup(services, STORE, made.draft_id))["feedback"] == "skipped"
    assert Drafts(services.redis, services.store).get(STORE, made.draft_id)["feedback"]["gateway"] == "sent"


def test_without_a_cloudflare_api_token_nothing_is_sent(services: Any, gateway: Any) -> None:
    from pipelines.drafts_review import reject
    from pipelines.product_copy import generate_product_copy

    add_store(services.redis, STORE, publish={"copy": "review", "theme": "review"})
    made = arun(generate_product_copy(services, STORE, sample_products("electricshop")[1]))
    decided = reject(services.redis, services.store, STORE, made.draft_id, by="test", reason="No")
    assert decided["feedback"]["gateway"] == "off"
