"""The push's mutations are valid in the Admin schemas that have them (the pinned version among them)."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from adapters.settings import Settings
from adapters.shopify_admin import MUTATION_VERSIONS, MUTATIONS, PRODUCT_TEXT_QUERY, QUERIES
from tests.fixtures.shopify import MAX_QUERY_COST, admin_schema, query_cost


@pytest.mark.parametrize("version", MUTATION_VERSIONS)
def test_the_push_mutations_validate_against_the_admin_schema(version: str) -> None:
    schema = admin_schema(version)
    for mutation in MUTATIONS:
        assert validate(schema, parse(mutation)) == [], mutation


def test_the_pinned_version_can_push() -> None:
    assert Settings.model_fields["shopify_api_version"].default in MUTATION_VERSIONS


def test_the_push_reads_the_product_with_a_query_every_version_validates() -> None:
    assert PRODUCT_TEXT_QUERY in QUERIES  # test_shopify_queries validates QUERIES in every version
    schema = admin_schema("2025-01")
    cost = query_cost(schema, parse(PRODUCT_TEXT_QUERY), {"id": "gid://shopify/Product/1"})
    assert 0 < cost <= MAX_QUERY_COST
