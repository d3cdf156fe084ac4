"""The broker's crash-recovery settings: the defaults a deployment runs, and a timeout that outlasts beats."""

from __future__ import annotations

import pytest

from adapters.errors import ConfigError
from adapters.settings import load_settings


def test_the_defaults_recover_a_dead_worker_within_twenty_seconds() -> None:
    settings = load_settings()
    assert settings.broker_heartbeat_timeout_ms == 15_000
    assert settings.broker_maintenance_interval_ms == 5_000
    assert settings.broker_maintenance_chance == 0  # the timer does it
    assert settings.jobs_lost_after_s == 120


def test_a_timeout_shorter_than_three_beats_is_refused_naming_both_settings() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(broker_heartbeat_timeout_ms=9_000, broker_maintenance_interval_ms=5_000)
    message = str(refused.value)
    assert "BROKER_HEARTBEAT_TIMEOUT_MS (9000)" in message
    assert "BROKER_MAINTENANCE_INTERVAL_MS (5000)" in message
