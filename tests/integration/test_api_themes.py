"""Theme builds over HTTP: POST a theme_build generation, list the store's themes, activate one."""

from __future__ import annotations

from typing import Any

from tests.conftest import sample_products
from tests.fixtures.api import ApiHarness
from tests.fixtures.stores import add_store
from tests.integration.test_api import merchant_client, poll

STORE = "stanley1913"
BRIEF = {
    "description": "Rugged, dependable drinkware for the outdoors and the everyday; warm and plain-spoken.",
    "audience": "campers and commuters",
    "palette_hint": "forest green and warm off-white",
}


def test_theme_build_round_trip_list_and_activate(api: ApiHarness) -> None:
    client = merchant_client(api, STORE)
    # Given a theme_build generation with the store's products as its catalog
    body: dict[str, Any] = {
        "pipeline": "theme_build",
        "input": {"brief": BRIEF, "products": sample_products(STORE)[:12]},
    }
    response = client.post(f"/v1/stores/{STORE}/generations", json=body)
    assert response.status_code == 202, response.text
    # When it is polled until done
    status = poll(client, response.json()["status_url"], timeout_s=60)
    # Then its theme and preview are published and readable through the API, waiting for review
    assert status["status"] == "done", status
    theme_key, _preview = status["output_keys"]
    assert theme_key.startswith(f"themes/{STORE}/builds/") and status["live"] is False
    theme = client.get(status["output_urls"][0]).json()
    preview = client.get(status["output_urls"][1])
    assert preview.headers["content-type"].startswith("text/html")
    assert "sandbox" in preview.headers["content-security-policy"]
    build_id = theme["build_id"]
    # And it cannot be activated around its review
    early = client.post(f"/v1/stores/{STORE}/themes/{build_id}/activate")
    assert early.status_code == 409 and "approve" in early.json()["error"]["message"]
    # When the merchant approves its draft
    approved = client.post(f"/v1/stores/{STORE}/drafts/{status['draft_id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "live", approved.text
    # Then the store's themes list shows it as current
    listed = client.get(f"/v1/stores/{STORE}/themes").json()["builds"]
    assert listed[0]["build_id"] == build_id and listed[0]["current"] is True
    assert client.get(listed[0]["preview_url"]).status_code == 200
    # When it is activated again (a roll forward to itself)
    activated = client.post(f"/v1/stores/{STORE}/themes/{build_id}/activate")
    # Then the pointer names it, and says what it replaced
    assert activated.status_code == 200, activated.text
    pointer = activated.json()
    assert pointer["build_id"] == build_id and pointer["previous_build_id"] == build_id
    assert (
        client.get(f"/v1/stores/{STORE}/outputs/themes/{STORE}/current.json").json()["build_id"] == build_id
    )


def test_activating_unknown_or_malformed_builds_is_refused(api: ApiHarness) -> None:
    client = api.client("ops")
    unknown = client.post(f"/v1/stores/{STORE}/themes/00000000-0000-4000-8000-000000000000/activate")
    malformed = client.post(f"/v1/stores/{STORE}/themes/..%2Fother/activate")
    assert unknown.status_code == 404 and "not published" in unknown.json()["error"]["message"]
    assert malformed.status_code in (404, 422)


def test_theme_build_input_is_checked_before_enqueue(api: ApiHarness) -> None:
    store = "themeless-store"
    add_store(api.ctx.redis, store)  # added, with no catalog yet
    client = api.client("ops")
    no_catalog = client.post(
        f"/v1/stores/{store}/generations", json={"pipeline": "theme_build", "input": {"brief": BRIEF}}
    )
    no_brief = client.post(
        f"/v1/stores/{store}/generations", json={"pipeline": "theme_build", "input": {"brief": {}}}
    )
    assert (
        no_catalog.status_code == 422
        and no_catalog.json()["error"]["details"][0]["field"] == "input.products"
    )
    assert "catalog snapshot" in no_catalog.json()["error"]["message"]
    assert no_brief.status_code == 422 and no_brief.json()["error"]["details"][0]["field"] == "input.brief"
