"""Run the dev gateway under uvicorn: blocking (`serve`) or in a background thread (`start_in_thread`)."""

from __future__ import annotations

import importlib.util
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from devgateway.app import create_app

DEFAULT_ACCOUNT = "dev"
DEFAULT_GATEWAY = "wandstore-ai"
_STARTUP_TIMEOUT_S = 15.0


def _http_impl() -> str:
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="asyncio",
        http=_http_impl(),
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level="warning",
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=2,
    )


class _Server(uvicorn.Server):
    """uvicorn's server, releasing hanging requests as soon as shutdown starts."""

    def __init__(self, config: uvicorn.Config, app: Any) -> None:
        super().__init__(config)
        self.gateway_app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.release()
        super().handle_exit(sig, frame)

    def release(self) -> None:
        """Let requests sleeping on a `timeout` fault answer now."""
        self.gateway_app.state.handlers.close()


def base_url_for(root: str, account: str = DEFAULT_ACCOUNT, gateway: str = DEFAULT_GATEWAY) -> str:
    """The AI Gateway-style base URL (append `/openai` or `/anthropic`) under `root`."""
    return f"{root.rstrip('/')}/v1/{account}/{gateway}"


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def serve(host: str = "127.0.0.1", port: int = 8787, latency_ms: int = 0, hostile: bool = False) -> None:
    """Serve the dev gateway until interrupted (blocking)."""
    app = create_app(latency_ms=latency_ms, hostile=hostile)
    root = f"http://{_display_host(host)}:{port}"
    logging.getLogger("devgateway").info(
        "devgateway.listening url=%s base_url=%s latency_ms=%s hostile=%s",
        root,
        base_url_for(root),
        latency_ms,
        hostile,
    )
    _Server(_config(app, host, port), app).run()


@dataclass
class RunningGateway:
    """A dev gateway serving from a background thread of this process."""

    url: str
    base_url: str
    server: _Server = field(repr=False)
    thread: threading.Thread = field(repr=False)
    app: Any = field(repr=False)

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self.url.rsplit(":", 1)[1])

    def faults(self, faults: list[dict[str, Any]]) -> dict[str, Any]:
        """Queue faults (`POST /_dev/faults`)."""
        return self._admin("POST", "/_dev/faults", {"faults": faults})

    def config(self, **options: Any) -> dict[str, Any]:
        """Set persistent behaviour (`POST /_dev/config`): latency, hostility, rate limits, providers down."""
        return self._admin("POST", "/_dev/config", options)

    def stats(self) -> dict[str, Any]:
        """Counters (`GET /_dev/stats`)."""
        return self._admin("GET", "/_dev/stats")

    def reset(self) -> None:
        """Forget stats, caches, faults and config (`POST /_dev/reset`)."""
        self._admin("POST", "/_dev/reset")

    def _admin(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        response = httpx.request(method, self.url + path, json=payload, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down and wait for its thread."""
        self.server.release()
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_thread(host: str = "127.0.0.1", port: int = 0, **opts: Any) -> RunningGateway:
    """Start a dev gateway in a daemon thread on a pre-bound socket (port 0 picks a free port)."""
    app = create_app(**opts)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = _Server(_config(app, host, bound_port), app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"devgateway-{bound_port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"dev gateway did not start on {host}:{bound_port}")
        time.sleep(0.005)
    root = f"http://{_display_host(host)}:{bound_port}"
    return RunningGateway(url=root, base_url=base_url_for(root), server=server, thread=thread, app=app)
