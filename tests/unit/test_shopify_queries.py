"""Every query the Admin API client sends is valid in each published Admin schema, within the cost limit."""

from __future__ import annotations

import pytest
from graphql import parse, validate

from adapters.settings import Settings
from adapters.shopify_admin import QUERIES, rest_shape
from tests.fixtures.shopify import MAX_QUERY_COST, VERSIONS, admin_schema, query_cost


@pytest.mark.parametrize("version", VERSIONS)
def test_the_client_s_queries_validate_against_the_admin_schema(version: str) -> None:
    schema = admin_schema(version)
    for query in QUERIES:
        assert validate(schema, parse(query)) == [], query


def test_the_pinned_version_is_one_the_tests_validate_against() -> None:
    assert Settings.model_fields["shopify_api_version"].default in VERSIONS


def test_a_default_page_costs_less_than_shopify_s_single_query_limit() -> None:
    schema = admin_schema("2025-01")
    page = Settings.model_fields["shopify_page_size"].default
    variables = {"first": page, "after": None, "id": "gid://shopify/Product/1"}
    for query in QUERIES:
        assert query_cost(schema, parse(query), variables) <= MAX_QUERY_COST


def test_a_graphql_product_becomes_the_admin_rest_shape() -> None:
    node = {
        "id": "gid://shopify/Product/42",
        "legacyResourceId": "42",
        "title": "Mug",
        "descriptionHtml": "<p>Warm</p>",
        "productType": "Drinkware",
        "tags": ["a"],
        "status": "DRAFT",
        "publishedAt": None,
        "options": [{"name": "Size", "values": ["S"]}],
        "media": {
            "nodes": [
                {"id": "gid://shopify/MediaImage/7", "alt": "A mug", "image": {"url": "https://c/x.jpg"}},
                {},
            ]
        },
    }
    variants = [{"legacyResourceId": "9", "title": "S", "price": "5.00", "availableForSale": False}]
    shaped = rest_shape(node, variants)
    assert shaped["id"] == "42" and shaped["body_html"] == "<p>Warm</p>" and shaped["status"] == "draft"
    assert shaped["published_at"] is None and "published_at" in shaped
    assert shaped["variants"] == [
        {"id": "9", "title": "S", "price": "5.00", "compare_at_price": None, "sku": None, "available": False}
    ]
    assert shaped["images"] == [{"id": "7", "src": "https://c/x.jpg", "alt": "A mug"}]
