"""JSON in pieces (entrypoints/api/jsonchunks.py) gives exactly what the json module gives."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoints.api.jsonchunks import canonical_chunks, loads

leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
values = st.recursive(leaf, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=40)
CATALOG = Path(__file__).resolve().parents[2] / "data" / "shopify" / "stanley1913.products.json"


@settings(max_examples=300, deadline=None)
@given(value=values, indent=st.none() | st.integers(0, 3))
def test_loads_equals_json_loads(value: Any, indent: int | None) -> None:
    raw = json.dumps(value, indent=indent).encode()
    assert loads(raw) == json.loads(raw)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_canonical_chunks_are_json_dumps_sorted(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    assert "".join(canonical_chunks(value)) == expected


def test_a_catalog_round_trips_and_nan_is_read_as_json_reads_it() -> None:
    raw = CATALOG.read_bytes()
    assert loads(raw) == json.loads(raw)
    weird = b'{"p": [{"price": NaN}, 1e999, -Infinity]}'
    assert repr(loads(weird)) == repr(json.loads(weird))


@pytest.mark.parametrize(
    "raw", [b'{"a": 1,}', b'{"a" 1}', b"[1, 2", b'{"a": [1 2]}', b'{"a": 1} x', b"{1: 2}", b'"\xff"']
)
def test_malformed_json_fails_as_json_loads_does(raw: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        loads(raw)


def test_the_idempotency_fingerprint_of_a_body_is_unchanged() -> None:
    from entrypoints.api.common import body_fingerprint
    from entrypoints.api.schemas import CatalogCopyRequest, GenerationRequest

    bodies = [
        GenerationRequest.model_validate(
            {"pipeline": "product_copy", "input": {"product": {"id": 1}}, "callback_url": "https://x.io/h"}
        ),
        CatalogCopyRequest.model_validate({"products": json.loads(CATALOG.read_bytes())["products"][:5]}),
    ]
    for body in bodies:
        before = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        assert body_fingerprint(body) == hashlib.sha256(before.encode()).hexdigest()
