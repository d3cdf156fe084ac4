"""Webhooks: the finished result POSTed to callback_url, signed, retried, visible in the status."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from adapters.signing import SignatureError, sign, verify_signature
from tests.conftest import sample_products
from tests.fixtures.api import ApiHarness, WebhookReceiver
from tests.fixtures.stores import add_store
from tests.integration.test_api import poll

STORE = "kiids-kingdom"


@pytest.fixture(autouse=True)
def webhook_secret(api: ApiHarness) -> str:
    """The store's signing secret, made as ops make it (`tokens webhook-secret`); deliveries make none."""
    return _secret(api, STORE)


def wait_webhook(client: Any, status_url: str, state: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """Poll the generation's status until its webhook reaches `state`."""
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = client.get(status_url).json()
        if body.get("webhook") == state:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"webhook never reached {state!r}: {body}")
        time.sleep(0.02)


def test_finished_result_is_posted_signed_and_recorded(api: ApiHarness, receiver: WebhookReceiver) -> None:
    # Given a generation with a callback_url
    api.token_for(STORE)
    client = api.client(STORE)
    product = sample_products(STORE)[11]
    body = {
        "pipeline": "product_copy",
        "input": {"product": product},
        "callback_url": f"{receiver.url}/hooks/ok",
    }
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    # When the job finishes
    (delivery,) = receiver.wait_for(1, "/hooks/ok")
    # Then the finished result arrives, signed with the store's secret
    secret = _secret(api, STORE)
    header = delivery.headers["x-wandstore-signature"]
    assert verify_signature(secret, header, delivery.body) > 0
    payload = json.loads(delivery.body)
    assert payload["event"] == "generation.finished" and payload["id"] == accepted["id"]
    assert payload["status"] == "done" and payload["store"] == STORE
    assert payload["output"]["meta"]["job_id"] == accepted["id"]
    assert payload["output_keys"] == [f"stores/{STORE}/products/{product['id']}/copy.json"]
    # And the attempt is visible in the generation's status
    status = wait_webhook(client, accepted["status_url"], "delivered")
    assert [d["status_code"] for d in status["deliveries"]] == [200]
    # And a tampered body, a forged signature, a wrong secret or a replay is rejected
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(secret, header, delivery.body.replace(b'"done"', b'"DONE"'))
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(secret, header[:-4] + "0000", delivery.body)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature("whsec_not-the-secret", header, delivery.body)
    stale = sign(secret, delivery.body, timestamp=int(time.time()) - 3600)
    with pytest.raises(SignatureError, match="tolerance"):
        verify_signature(secret, stale, delivery.body)
    with pytest.raises(SignatureError, match="missing"):
        verify_signature(secret, None, delivery.body)


def test_failed_delivery_is_retried_with_backoff(api: ApiHarness, receiver: WebhookReceiver) -> None:
    # Given a receiver that answers 500, then 503, then 200
    receiver.answers.extend([500, 503])
    client = api.client("ops")
    body = {
        "pipeline": "product_copy",
        "input": {"product": sample_products(STORE)[12]},
        "callback_url": f"{receiver.url}/hooks/flaky",
    }
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    # When the deliveries run their course
    deliveries = receiver.wait_for(3, "/hooks/flaky")
    status = wait_webhook(client, accepted["status_url"], "delivered")
    # Then three attempts were made, each visible with its outcome, the last one delivered
    assert [d["status_code"] for d in status["deliveries"]] == [500, 503, 200]
    assert status["deliveries"][0]["error"] == "receiver answered HTTP 500"
    assert [d.headers["x-wandstore-delivery"] for d in deliveries] == [
        f"{accepted['id']}.{n}" for n in (1, 2, 3)
    ]
    # And each attempt was signed afresh, and backed off (50 ms, then 100 ms, at least)
    secret = _secret(api, STORE)
    stamps = [verify_signature(secret, d.headers["x-wandstore-signature"], d.body) for d in deliveries]
    assert stamps == sorted(stamps)
    times = [_parse_iso(d["at"]) for d in status["deliveries"]]
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1


def test_an_unreachable_receiver_fails_after_the_last_attempt(
    api: ApiHarness, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints import compose

    # Given at most 2 attempts, and a callback address where nothing listens
    monkeypatch.setattr(compose.services().settings, "webhook_max_attempts", 2)
    from tests.fixtures.redis import free_port

    client = api.client("ops")
    body = {
        "pipeline": "product_copy",
        "input": {"product": sample_products(STORE)[13]},
        "callback_url": f"http://127.0.0.1:{free_port()}/gone",
    }
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    # When the deliveries run out
    status = wait_webhook(client, accepted["status_url"], "failed")
    # Then the job itself is still done, and both failed attempts say why
    assert status["status"] == "done"
    assert len(status["deliveries"]) == 2
    # (what kind of failure, never the address or a timing: a tenant must not map ports with it)
    assert all(d["error"] == "could not connect to the receiver" for d in status["deliveries"])


def test_a_refusal_is_not_retried(api: ApiHarness, receiver: WebhookReceiver) -> None:
    # Given a receiver that refuses the delivery (410 Gone)
    receiver.answers.append(410)
    client = api.client("ops")
    body = {
        "pipeline": "product_copy",
        "input": {"product": sample_products(STORE)[16]},
        "callback_url": f"{receiver.url}/hooks/gone",
    }
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    # When the delivery is answered
    status = wait_webhook(client, accepted["status_url"], "failed")
    # Then it was attempted once: sending it again would not change the answer
    assert [d["status_code"] for d in status["deliveries"]] == [410]
    assert len(receiver.wait_for(1, "/hooks/gone")) == 1


def test_callbacks_to_private_addresses_are_refused_unless_allowed(api: ApiHarness) -> None:
    from adapters.settings import load_settings
    from entrypoints import compose
    from entrypoints.api import create_app
    from tests.fixtures.api import OPS_TOKEN, serve_app

    # Given an API with the production default (callbacks to public addresses only)
    ctx = compose.api_context(load_settings(ops_api_token=OPS_TOKEN), store=api.ctx.store)
    store = "private-callbacks"
    add_store(ctx.redis, store)
    with serve_app(create_app(ctx)) as running, running.client(OPS_TOKEN) as client:
        # When callbacks to loopback, cloud metadata or a private network are asked for
        codes = {}
        for url in ("http://127.0.0.1:9/h", "http://169.254.169.254/latest/meta-data", "https://10.1.2.3/h"):
            body = {
                "pipeline": "product_copy",
                "input": {"product": sample_products(STORE)[0]},
                "callback_url": url,
            }
            response = client.post(f"/v1/stores/{store}/generations", json=body)
            codes[url] = (response.status_code, response.json()["error"]["details"][0]["field"])
    # Then each is 422 naming callback_url, and nothing was enqueued
    assert set(codes.values()) == {(422, "callback_url")}, codes
    from tests.integration.test_api import jobs_of_store

    assert jobs_of_store(api, store) == []


def test_the_worker_checks_the_callback_again_before_delivering(
    api: ApiHarness, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints import compose

    # Given an API that accepted a loopback callback, and a worker that allows public addresses only
    monkeypatch.setattr(compose.services().settings, "webhook_allow_private_hosts", False)
    client = api.client("ops")
    body = {
        "pipeline": "product_copy",
        "input": {"product": sample_products(STORE)[17]},
        "callback_url": f"{receiver.url}/hooks/private",
    }
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    # When the job finishes
    status = wait_webhook(client, accepted["status_url"], "failed")
    # Then nothing was sent, and the one attempt says why
    assert [d.get("status_code") for d in status["deliveries"]] == [None]
    assert "private" in status["deliveries"][0]["error"]
    assert [r for r in receiver.received if r.path == "/hooks/private"] == []


def test_poll_and_webhook_agree(api: ApiHarness, receiver: WebhookReceiver) -> None:
    # Given a generation with a callback, followed by polling as well
    client = api.client("ops")
    body = {
        "pipeline": "product_copy",
        "input": {"product": sample_products(STORE)[14]},
        "callback_url": f"{receiver.url}/hooks/agree",
    }
    accepted = client.post(f"/v1/stores/{STORE}/generations", json=body).json()
    polled = poll(client, accepted["status_url"])
    (delivery,) = receiver.wait_for(1, "/hooks/agree")
    payload = json.loads(delivery.body)
    # Then both report the same outcome, outputs and cost
    assert (payload["status"], payload["output_keys"], payload["cost_usd"]) == (
        polled["status"],
        polled["output_keys"],
        polled["cost_usd"],
    )


def _secret(api: ApiHarness, store: str) -> str:
    from adapters.signing import WebhookSecrets

    return WebhookSecrets(api.ctx.redis).get_or_create(store)


def _parse_iso(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
