"""The CLI's check that a store exists: every command but `stores add` refuses a slug nobody added."""

from __future__ import annotations

from typing import Any

from domain.keys import check_store
from entrypoints.cli.output import fail


def registry() -> Any:
    """The store records in the configured Redis."""
    from adapters.settings import get_settings
    from adapters.stores import StoreRegistry
    from entrypoints.compose import redis_client

    return StoreRegistry(redis_client(get_settings()))


def known_store(value: str | None) -> Any:
    """A typer callback: a valid slug of a store someone added, else exit naming `stores add`."""
    if value is None:  # an optional --store left out
        return value
    from adapters.stores import how_to_add

    check_store(value)
    if not registry().exists(value):
        fail(how_to_add(value))
    return value
