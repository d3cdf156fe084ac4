"""Prompt data renders byte for byte as json.dumps(indent=1) did (the text keys the gateway cache)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.jsontext import dumps_indent1
from tests.conftest import sample_products

leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)


@settings(max_examples=400, deadline=None)
@given(values)
def test_any_json_value_renders_exactly_as_json_dumps(value: Any) -> None:
    assert dumps_indent1(value) == reference(value)


def test_real_products_and_unusual_values_render_exactly_as_json_dumps() -> None:
    # Given the sample stores' products, and values json.dumps treats specially
    cases: list[Any] = [sample_products(s) for s in ("stanley1913", "electricshop", "kiids-kingdom")]
    cases += [{1: "int key"}, (1, [2, (3,)]), {"nan": math.nan, "inf": -math.inf}, {"s": {1, 2}.__len__()}]
    cases += [['\u2028 \x00 "quoted" </script>'], {}, [], {"a": {}, "b": []}]
    # Then every one renders the same text
    for case in cases:
        assert dumps_indent1(case) == reference(case)
