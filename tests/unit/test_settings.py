"""Settings: one typed object; bad values are errors that name the variable."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from adapters.settings import load_settings


def test_malformed_redis_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "localhost:6379")
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings()


def test_malformed_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAILY_BUDGET_USD", "lots")
    with pytest.raises(ConfigError, match="DAILY_BUDGET_USD"):
        load_settings()


def test_bad_gateway_url_names_the_variable_and_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_GATEWAY_URL", "ftp://nope")
    monkeypatch.setenv("AI_GATEWAY_TOKEN", "tok-SECRET-123456")
    with pytest.raises(ConfigError, match="AI_GATEWAY_URL") as info:
        load_settings()
    assert "SECRET" not in str(info.value)


def test_gateway_base_url_from_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AI_GATEWAY_URL", raising=False)
    monkeypatch.setenv("CF_ACCOUNT_ID", "abc123")
    s = load_settings()
    assert s.gateway_base_url == "https://gateway.ai.cloudflare.com/v1/abc123/wandstore-ai"
    assert not s.r2_configured


def test_r2_credentials_without_endpoint_is_a_named_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CF_ACCOUNT_ID", raising=False)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "secret-value")
    s = load_settings()
    assert s.r2_configured
    with pytest.raises(ConfigError, match="R2_ENDPOINT_URL"):
        _ = s.r2_endpoint


def test_secrets_are_secret_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdef")
    s = load_settings()
    assert "sk-test-abcdef" not in repr(s)
    assert "sk-test-abcdef" in s.secret_values()
