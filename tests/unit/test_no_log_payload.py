"""GATEWAY_NO_LOG_PAYLOAD names real pipelines, and matches a call under either spelling of its pipeline."""

from __future__ import annotations

import pytest

from adapters.pipeline_names import ACTOR_OF, PERSONALIZATION, PIPELINES
from adapters.settings import Settings
from agents.gateway_headers import NO_LOG_PAYLOAD_DEFAULT, call_headers
from agents.usage import CallContext


def test_the_default_names_personalization_as_the_pipelines_call_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_NO_LOG_PAYLOAD", raising=False)
    assert NO_LOG_PAYLOAD_DEFAULT == (PERSONALIZATION,)
    assert set(NO_LOG_PAYLOAD_DEFAULT) <= set(PIPELINES)
    assert Settings().gateway_no_log_payload == list(NO_LOG_PAYLOAD_DEFAULT)


def no_log(pipeline: str, configured: tuple[str, ...] = NO_LOG_PAYLOAD_DEFAULT) -> bool:
    headers = call_headers(CallContext("s", pipeline), timeout_s=1.0, no_log_payload=configured)
    return headers.get("cf-aig-collect-log-payload") == "false"


def test_a_pipeline_is_matched_by_its_name_or_its_actors() -> None:
    assert no_log(PERSONALIZATION) and no_log(ACTOR_OF[PERSONALIZATION])
    assert no_log(PERSONALIZATION, ("personalize",))  # a setting written with the actor's name
    assert not no_log("product_copy") and not no_log("theme_build")
    assert not no_log(PERSONALIZATION, ())
