"""The worker and the API refuse a Redis that would lose state, and say which setting to change."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from adapters.errors import ConfigError
from adapters.redis_durability import durability_problems, require_durable
from adapters.settings import load_settings
from tests.fixtures.redis import RedisProcess

ROOT = Path(__file__).resolve().parents[2]
VOLATILE = ("--appendonly", "no", "--save", "")


@pytest.fixture
def volatile(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(data_dir=tmp_path / "volatile", persistence=VOLATILE)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def evicting(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(data_dir=tmp_path / "evicting", extra=("--maxmemory-policy", "allkeys-lru"))
    server.start()
    yield server
    server.stop()


def test_the_session_redis_like_production_passes(redis_server: RedisProcess) -> None:
    assert durability_problems(redis.Redis.from_url(redis_server.url)) == []


def test_a_server_without_aof_or_rdb_is_named(volatile: RedisProcess) -> None:
    problems = durability_problems(redis.Redis.from_url(volatile.url))
    assert len(problems) == 1 and "appendonly yes" in problems[0]


def test_rdb_alone_is_enough(tmp_path: Path) -> None:
    server = RedisProcess(data_dir=tmp_path / "rdb", persistence=("--appendonly", "no", "--save", "60 1"))
    server.start()
    try:
        assert durability_problems(redis.Redis.from_url(server.url)) == []
    finally:
        server.stop()


def test_an_evicting_policy_is_named(evicting: RedisProcess) -> None:
    problems = durability_problems(redis.Redis.from_url(evicting.url))
    assert problems == ["maxmemory-policy is 'allkeys-lru': set `maxmemory-policy noeviction`"]


def test_refusal_names_the_opt_out_and_opting_out_returns_the_problems(volatile: RedisProcess) -> None:
    client = redis.Redis.from_url(volatile.url)
    with pytest.raises(ConfigError, match="REDIS_REQUIRE_DURABLE=false"):
        require_durable(client, required=True)
    assert require_durable(client, required=False)


def test_the_api_refuses_to_start_on_a_volatile_redis(volatile: RedisProcess) -> None:
    from entrypoints import compose

    settings = load_settings(redis_url=volatile.url)
    with pytest.raises(ConfigError, match="appendonly yes"):
        compose.api_context(settings)


def test_the_procfile_worker_refuses_to_start_on_a_volatile_redis(volatile: RedisProcess) -> None:
    # Given the Procfile's worker command pointed at a Redis without persistence
    env = {**os.environ, "REDIS_URL": volatile.url, "LOG_FORMAT": "console"}
    dramatiq = str(Path(sys.executable).with_name("dramatiq"))
    # When it starts, Then it exits at once with the setting to change
    done = subprocess.run(
        [dramatiq, "entrypoints.worker:setup", "--processes", "1", "--threads", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert done.returncode != 0
    assert "appendonly yes" in done.stderr + done.stdout
