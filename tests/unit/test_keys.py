"""Store slugs and ids are checked before they become part of any key."""

from __future__ import annotations

import pytest

from adapters.errors import InvalidInput
from domain.keys import check_id, check_store, personalization_key, product_copy_key


@pytest.mark.parametrize("slug", ["stanley1913", "a", "kiids-kingdom", "x" * 63])
def test_valid_store_slugs(slug: str) -> None:
    assert check_store(slug) == slug


@pytest.mark.parametrize("slug", ["", "-lead", "Upper", "a/b", "../etc", "a b", "x" * 64, "a\x00", 5, None])
def test_invalid_store_slugs_are_refused_with_the_rule(slug: object) -> None:
    with pytest.raises(InvalidInput, match="store slug"):
        check_store(slug)


def test_numeric_and_string_product_ids() -> None:
    assert product_copy_key("s", 7814117884131) == "stores/s/products/7814117884131/copy.json"
    assert product_copy_key("s", "gid-12") == "stores/s/products/gid-12/copy.json"


@pytest.mark.parametrize("bad", ["../x", "a/b", "a b", "", "a\x00b", ".hidden", True, -1, "x" * 200, 1.5])
def test_hostile_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput):
        check_id(bad, "product id")


def test_shopper_key() -> None:
    assert personalization_key("s", "shopper_1") == "stores/s/shoppers/shopper_1/personalization.json"
