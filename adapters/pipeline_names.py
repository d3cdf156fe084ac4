"""One name per pipeline wherever a person sees one: requests, statuses, costs, metrics, the CLI.

The names are the HTTP API's: `product_copy`, `personalization`, `theme_build`. Two Dramatiq
actors are older and keep their names (`personalize`, `build_theme`), because other programs
enqueue by them; they are mapped here, at the boundary, and never shown. Records written
before the names were one (job statuses, ledger counters, published `meta`) may carry an
actor's name: `canonical` reads them ([decision 0016](../docs/decisions/0016-one-name-per-pipeline.md)).
"""

from __future__ import annotations

from typing import overload

PRODUCT_COPY = "product_copy"
PERSONALIZATION = "personalization"
THEME_BUILD = "theme_build"
PIPELINES = (PRODUCT_COPY, PERSONALIZATION, THEME_BUILD)

# The actor that runs each pipeline (Dramatiq's names; internal).
ACTOR_OF = {PRODUCT_COPY: "product_copy", PERSONALIZATION: "personalize", THEME_BUILD: "build_theme"}
# Old spellings, found in records written before: accepted on read, never written.
LEGACY = {"personalize": PERSONALIZATION, "build_theme": THEME_BUILD}


@overload
def canonical(name: str) -> str: ...
@overload
def canonical(name: None) -> None: ...
def canonical(name: str | None) -> str | None:
    """The pipeline's one name for `name`, which may be an actor's or an old record's spelling.

    A job that is not one of the pipelines (`catalog_sync`, `deliver_webhook`, ...) keeps its name.
    """
    if name is None:
        return None
    return LEGACY.get(name, name)
