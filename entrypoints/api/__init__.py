"""The HTTP API (the Procfile's `web` process): FastAPI in front of the same actors."""

from entrypoints.api.app import create_app

__all__ = ["create_app"]
