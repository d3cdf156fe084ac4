"""One envelope, one signature, one retry rule for every delivery (pipelines/delivery.py)."""

from __future__ import annotations

import json

import pytest

from adapters.signing import HEADER, SignatureError, verify_signature
from pipelines import delivery

JOB = {
    "id": "job-1",
    "store": "kiids-kingdom",
    "pipeline": "product_copy",
    "status": "done",
    "output_keys": ["stores/kiids-kingdom/products/7/copy.json"],
    "cost_usd": "0.000120",
    "served": "fresh",
    "finished_at": "2026-12-04T17:29:00Z",
    "callback_url": "https://receiver.example/hooks",  # the job's own fields stay out of the body
    "deliveries": [{"attempt": 1}],
}
BODY_KEYS = ["event", "id", "store", "pipeline", "status", "output_keys", "cost_usd", "served", "error"]


def test_the_envelope_is_the_jobs_outcome_in_the_contract_shape() -> None:
    body = delivery.envelope(JOB)
    assert list(body) == [*BODY_KEYS, "finished_at"]
    assert body["event"] == "generation.finished" and body["id"] == "job-1" and body["error"] is None


def test_a_callbacks_extras_come_before_the_output_document() -> None:
    body = delivery.envelope(JOB, output={"headline": "Hi"}, shopper_id="s-1")
    assert list(body)[-2:] == ["shopper_id", "output"]
    assert body["output"] == {"headline": "Hi"}


def test_each_attempt_is_signed_over_the_exact_body_it_sends() -> None:
    # Given an envelope with text outside ASCII, encoded once for every attempt
    body = delivery.encode(delivery.envelope(JOB, output={"headline": "Für dich ✨"}))
    # When an attempt's headers are made
    headers = delivery.headers(body, "whsec_test", "job-1.2")
    # Then they name the event and the attempt, and the signature verifies with the store's secret
    assert headers["X-Wandstore-Event"] == "generation.finished"
    assert headers["X-Wandstore-Delivery"] == "job-1.2"
    assert headers["Content-Type"] == "application/json"
    assert verify_signature("whsec_test", headers[HEADER], body) > 0
    assert json.loads(body)["output"]["headline"] == "Für dich ✨"
    # And the same signature fails for another body or another secret
    with pytest.raises(SignatureError):
        verify_signature("whsec_test", headers[HEADER], body.replace(b"job-1", b"job-2"))
    with pytest.raises(SignatureError):
        verify_signature("whsec_other", headers[HEADER], body)


@pytest.mark.parametrize("code", [408, 425, 429, 500, 502, 503, 504])
def test_timeouts_throttles_and_server_errors_are_retried(code: int) -> None:
    assert delivery.retryable(code) is True


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 413, 422])
def test_any_other_4xx_is_a_refusal(code: int) -> None:
    assert delivery.retryable(code) is False
