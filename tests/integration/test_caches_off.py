"""CACHES_ENABLED=false: every request is a fresh generation (the cost benchmark's "caches off")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sample_products
from tests.helpers import arun


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_with_caches_off_repeats_are_generated_again(redis_client: Any, gateway: Any, tmp_path: Path) -> None:
    # Given services built with the caches off
    from adapters.settings import load_settings
    from adapters.store import LocalStore
    from entrypoints.compose import build_services
    from pipelines.product_copy import generate_product_copy

    svc = build_services(load_settings(caches_enabled=False))
    svc.store = LocalStore(tmp_path / "objects")
    product = sample_products("electricshop")[1]
    # When the same product is written three times
    served = [arun(generate_product_copy(svc, "electricshop", product)).meta["served"] for _ in range(3)]
    # Then each is a fresh model call: no result-cache answer, no gateway-cache answer
    assert served == ["fresh", "fresh", "fresh"]
    stats = gateway.stats()
    assert stats["model_calls"] == 3 and stats["cache_hits"] == 0
