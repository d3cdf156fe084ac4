"""The embedded defaults' model gateway: with no AI Gateway configured, a dev gateway in this process.

Only this module and `wandstore-agents gateway` import the dev gateway (`devgateway/`, installed
by the `dev` extra). A production install has no dev gateway, so an unconfigured gateway is a
configuration error that names the variables to set.
"""

from __future__ import annotations

import threading
from typing import Any

from adapters.errors import ConfigError
from adapters.logs import get_logger
from adapters.settings import Settings

log = get_logger("entrypoints.devmode")
_lock = threading.Lock()
_running: Any = None


def with_gateway(settings: Settings) -> Settings:
    """`settings`, pointed at a dev gateway started in this process when no gateway is configured."""
    global _running
    if settings.gateway_base_url is not None:
        return settings
    with _lock:
        if _running is None:
            try:
                from devgateway import start_in_thread
            except ImportError:
                raise ConfigError(
                    "no AI Gateway configured: set AI_GATEWAY_URL, or CF_ACCOUNT_ID (and AI_GATEWAY_ID); "
                    "the offline dev gateway is only in a development install (`make install`)"
                ) from None
            _running = start_in_thread()
            log.info("dev_gateway_started", base_url=_running.base_url)
    return settings.model_copy(update={"ai_gateway_url": _running.base_url})
