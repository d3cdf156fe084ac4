"""bench.where's stubs name parts that exist: a rename fails here, not as a benchmark that stubs nothing."""

from __future__ import annotations

import importlib

import pytest

TARGETS = {
    "objects": [("adapters.store.local", "LocalStore", "put"), ("adapters.store.local", "LocalStore", "get")],
    "drafts": [
        ("pipelines.product_copy", None, "propose_copy"),
        ("pipelines.drafts_review", None, "Proposed"),
    ],
    "ledger": [
        ("pipelines.accounting", "LedgerSink", "reserve"),
        ("pipelines.accounting", "LedgerSink", "settle"),
    ],
    "result_cache": [("pipelines.result_cache", "ResultCache", "get_or_compute")],
}


def test_every_part_bench_where_makes_free_has_a_stub() -> None:
    from bench import stubbed_worker, where

    assert set(stubbed_worker.PARTS) == set(TARGETS)
    named = {p for extra, _ in where.CONFIGS.values() for p in extra.get("BENCH_STUB", "").split(",") if p}
    assert named == set(TARGETS)


@pytest.mark.parametrize("part", sorted(TARGETS))
def test_each_stub_replaces_what_the_pipeline_calls(part: str) -> None:
    for module, owner, name in TARGETS[part]:
        found = importlib.import_module(module)
        assert hasattr(getattr(found, owner) if owner else found, name), (module, owner, name)
