"""Session set-up: private real servers, and the environment pointed at them.

The private Redis (valkey-server) starts in `pytest_configure`, before any test module
imports `pipelines` (whose broker reads REDIS_URL at import).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.redis import RedisProcess

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.gateway",
    "tests.fixtures.api",
    "tests.fixtures.lane",
    "tests.fixtures.otlp",
    "tests.fixtures.shopify",
    "tests.fixtures.stores",
]

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="wandstore-tests-"))
STORE_SECRETS_KEY = "lM1ZfJ3qz0u4Qy6l3b3Jm2bBvSXbq9o7mH3kE4Yd8Xw="  # a Fernet key for tests only
SHOPIFY_WEBHOOK_SECRET = "shpss_tests_0d6c1f9e2b7a4c8d"
_REDIS = RedisProcess(data_dir=_SESSION_DIR / "redis")

# Nothing in the suite may reach a real provider or R2 by accident.
for var in (
    "CF_ACCOUNT_ID",
    "AI_GATEWAY_URL",
    "AI_GATEWAY_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "R2_ACCESS_KEY_ID",
    "R2_SECRET_ACCESS_KEY",
    "R2_ENDPOINT_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",  # tests that export traces point their own processes at a receiver
):
    os.environ.pop(var, None)


def pytest_configure(config: pytest.Config) -> None:
    _REDIS.start()
    os.environ["REDIS_URL"] = _REDIS.url
    os.environ["LOCAL_STORE_DIR"] = str(_SESSION_DIR / "objects")
    os.environ["LOCAL_BACKUP_DIR"] = str(_SESSION_DIR / "backups")
    os.environ["LOG_LEVEL"] = "WARNING"
    # Stored Shopify Admin API tokens are sealed with this key; webhooks are signed with that secret.
    os.environ["STORE_SECRETS_KEY"] = STORE_SECRETS_KEY
    os.environ["SHOPIFY_WEBHOOK_SECRET"] = SHOPIFY_WEBHOOK_SECRET
    from tests.fixtures.gateway import start_session_gateway

    os.environ["AI_GATEWAY_URL"] = start_session_gateway(_SESSION_DIR).base_url


def pytest_unconfigure(config: pytest.Config) -> None:
    from tests.fixtures.gateway import stop_session_gateway

    stop_session_gateway()
    _REDIS.stop()
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Unit tests first, then integration; the fault suite last: it kills and restarts servers."""
    order = {"unit": 0, "integration": 1, "faults": 2}
    items.sort(key=lambda item: order.get(item.path.relative_to(Path(__file__).parent).parts[0], 1))


@pytest.fixture(scope="session")
def redis_server() -> RedisProcess:
    return _REDIS


@pytest.fixture
def redis_client(redis_server: RedisProcess) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def services(redis_client: Any, gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The per-process services, with a fresh local store for this test (restored after it)."""
    from adapters.store import LocalStore
    from entrypoints import compose

    svc = compose.services()
    monkeypatch.setattr(svc, "store", LocalStore(tmp_path / "objects"))
    return svc


@pytest.fixture(scope="session")
def session_worker() -> Iterator[Any]:
    """A real Dramatiq worker (threads in this process) on the private Redis, for the session.

    One worker, so one event loop: litellm binds its background logger to the first loop.
    """
    from dramatiq import Worker

    from entrypoints import compose

    broker = compose.process_broker()
    w = Worker(broker, worker_threads=16, worker_timeout=20)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def worker(services: Any, session_worker: Any) -> Any:
    """The session worker, with empty queues for this test."""
    from entrypoints import compose

    compose.process_broker().flush_all()
    return session_worker


def sample_products(store: str = "stanley1913") -> list[dict[str, Any]]:
    import json

    path = Path(__file__).resolve().parents[1] / "data" / "shopify" / f"{store}.products.json"
    return list(json.loads(path.read_text())["products"])
