"""Secrets never reach a log line or a tenant-visible error: whole, cut, or echoed in part."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters import logs

TOKEN = "cfut_9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    saved_secrets, saved_paths = set(logs._SECRETS), dict(logs._PATHS)
    logs.register_secrets([TOKEN])
    logs.register_private_path("/srv/wandstore/var/objects", "LOCAL_STORE_DIR")
    yield
    logs._SECRETS.clear()
    logs._SECRETS.update(saved_secrets)
    logs._PATHS.clear()
    logs._PATHS.update(saved_paths)


def test_a_whole_secret_is_replaced() -> None:
    assert logs.scrub(f"401 for token {TOKEN} at the gateway") == "401 for token [redacted] at the gateway"


def test_a_text_already_cut_inside_a_secret_loses_the_fragment() -> None:
    assert logs.scrub("echo: " + TOKEN[:7]) == "echo: [redacted]"
    assert logs.scrub(TOKEN[-6:] + " was refused") == "[redacted] was refused"


def test_a_fragment_echoed_in_the_middle_is_masked() -> None:
    shown = logs.scrub(f"key ...{TOKEN[5:25]}... is invalid")
    assert shown == "key ...[redacted]... is invalid"


def test_ordinary_text_is_left_alone() -> None:
    text = "product 123 could not be written: the model's answer failed its checks"
    assert logs.scrub(text) == text


def test_a_local_folder_is_shown_by_its_setting_name() -> None:
    text = "put 'x' failed (No space left): check LOCAL_STORE_DIR ('/srv/wandstore/var/objects')"
    assert "/srv/" not in logs.scrub(text)
    assert "('LOCAL_STORE_DIR')" in logs.scrub(text)


def test_log_lines_scrub_an_echoed_fragment_in_error_fields() -> None:
    from structlog.testing import capture_logs

    event = {"event": "job_failed", "error": f"upstream: bad key {TOKEN[:27]}"}
    with capture_logs():
        scrubbed = logs._scrub_processor(None, "error", event)
    assert TOKEN[:10] not in scrubbed["error"]
