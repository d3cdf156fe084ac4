"""The offline, deterministic dev gateway: Cloudflare AI Gateway's OpenAI and Anthropic endpoints, locally."""

from __future__ import annotations

from devgateway.app import create_app
from devgateway.server import RunningGateway, base_url_for, serve, start_in_thread

__all__ = ["RunningGateway", "base_url_for", "create_app", "serve", "start_in_thread"]
