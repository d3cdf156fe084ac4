"""What shoppers may see, how exports are read, how stored secrets are sealed: pure rules, no servers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from adapters.errors import ConfigError, InvalidInput, PermanentError
from domain.catalog import copy_fingerprint, is_live, shopify_time, visibility

DATA = Path(__file__).resolve().parents[2] / "data" / "shopify"


@pytest.mark.parametrize(
    ("status", "published", "available", "seen"),
    [
        (None, None, None, "live"),  # a reduced row: nothing says otherwise
        ("active", True, True, "live"),
        ("ACTIVE", True, None, "live"),
        ("draft", True, True, "draft"),
        ("archived", True, True, "archived"),
        ("active", False, True, "unpublished"),
        ("unlisted", True, True, "unpublished"),  # a status newer than this code is not shown
        ("active", True, False, "unavailable"),
    ],
)
def test_only_active_published_products_for_sale_are_live(
    status: str | None, published: bool | None, available: bool | None, seen: str
) -> None:
    assert visibility(status, published, available) == seen


def test_rows_without_a_visibility_are_judged_by_what_they_carry() -> None:
    assert is_live({"id": "1", "title": "x", "price": "5"})
    assert not is_live({"id": "1", "title": "x", "status": "draft"})
    assert not is_live({"id": "1", "title": "x", "published_at": None})
    assert is_live({"id": "1", "title": "x", "published_at": "2024-01-01T00:00:00Z", "available": True})
    assert not is_live({"id": "1", "visibility": "unavailable"})


def test_the_copy_fingerprint_moves_with_copy_fields_only() -> None:
    base = {"title": "Mug", "body_html": "<p>Warm</p>", "tags": ["a"], "price": "5.00"}
    assert copy_fingerprint(base) == copy_fingerprint({**base, "price": "9.00", "status": "draft"})
    assert copy_fingerprint(base) != copy_fingerprint({**base, "title": "Big mug"})
    assert copy_fingerprint(base) != copy_fingerprint({**base, "tags": ["a", "b"]})


def test_an_admin_rest_product_is_for_sale_by_its_stock() -> None:
    from agents.shopify import parse_product

    variant = {"price": "5.00", "inventory_management": "shopify", "inventory_policy": "deny"}
    sold_out = parse_product({"id": 1, "title": "x", "variants": [{**variant, "inventory_quantity": 0}]})
    oversold = parse_product(
        {
            "id": 1,
            "title": "x",
            "variants": [{**variant, "inventory_quantity": 0, "inventory_policy": "continue"}],
        }
    )
    untracked = parse_product({"id": 1, "title": "x", "variants": [{"price": "5", "inventory_quantity": 0}]})
    assert (sold_out.for_sale(), oversold.for_sale(), untracked.for_sale()) == (False, True, True)
    assert parse_product({"id": 1, "title": "x"}).for_sale() is None


def test_an_export_reads_a_product_at_a_time_whatever_its_shape() -> None:
    from agents.shopify_export import iter_export

    raw = (DATA / "electricshop.products.json").read_bytes()
    assert list(iter_export(io.BytesIO(raw))) == json.loads(raw)["products"]
    assert list(iter_export(io.BytesIO(b'\xef\xbb\xbf[{"id": 1}, {"id": 2}]'))) == [{"id": 1}, {"id": 2}]
    assert list(iter_export(io.BytesIO(b'{"product": {"id": 3}}'))) == [{"id": 3}]
    assert list(iter_export(io.BytesIO(b'{"n": 12345678901234567890, "products": []}'))) == []
    for bad in (b'{"products": [{"id": 1}', b"[1] 2", b"nope", b'{"products": [1 2]}', b"\xff\xfe"):
        with pytest.raises(InvalidInput):
            list(iter_export(io.BytesIO(bad)))


def test_a_snapshot_keeps_drafts_and_a_catalog_never_offers_them() -> None:
    from pipelines.catalog_snapshot import build_snapshot, live_rows, parse_snapshot

    products = json.loads((DATA / "kiids-kingdom.products.json").read_text())["products"][:6]
    products[0] = {**products[0], "status": "draft", "published_at": None}
    products[1] = {**products[1], "title": "<p>  </p>"}
    doc = build_snapshot("kiids-kingdom", {"products": products}, currency="INR")
    assert doc["counts"]["draft"] == 1 and doc["counts"]["skipped"] == 1
    assert doc["skipped"][0]["reason"].startswith("the title is blank")
    catalog = parse_snapshot(doc)
    draft_id = str(products[0]["id"])
    assert draft_id in catalog.hidden and draft_id not in catalog.by_id
    assert all(r["visibility"] == "live" for r in live_rows(doc))
    assert {v["currency"] for r in doc["products"] for v in r["variants"]} == {"INR"}


def test_the_throttle_waits_for_just_the_points_missing() -> None:
    from adapters.shopify_throttle import MARGIN_S, Bucket

    now = [100.0]
    bucket = Bucket(clock=lambda: now[0])
    assert bucket.wait_for(977) == 0.0  # nothing known yet: Shopify starts full
    status = {"maximumAvailable": 1000.0, "currentlyAvailable": 23, "restoreRate": 50.0}
    bucket.observe({"cost": {"requestedQueryCost": 977, "actualQueryCost": 400, "throttleStatus": status}})
    assert bucket.wait_for(bucket.last_cost) == pytest.approx((977 - 23) / 50 + MARGIN_S)
    now[0] += 10.0  # 500 points later
    assert bucket.wait_for(977) == pytest.approx((977 - 523) / 50 + MARGIN_S)
    now[0] += 100.0
    assert bucket.wait_for(977) == 0.0


def test_sealed_secrets_open_with_the_key_and_rotate(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from adapters.secretbox import SecretBox, open_box
    from adapters.settings import load_settings

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox([old]).seal("shpat_secret")
    assert "shpat_secret" not in sealed
    assert SecretBox([new, old]).open(sealed) == "shpat_secret"  # rotating: new first, old still opens
    with pytest.raises(PermanentError):
        SecretBox([new]).open(sealed)
    with pytest.raises(ConfigError, match="STORE_SECRETS_KEY"):
        SecretBox(["not-a-key"])
    # With REDIS_URL shared by other machines the key must be set; the embedded defaults make one
    with pytest.raises(ConfigError, match="STORE_SECRETS_KEY"):
        open_box(load_settings(redis_url="redis://x:6379/0", store_secrets_key=None))
    local = load_settings(redis_url=None, store_secrets_key=None, local_store_dir=tmp_path / "objects")
    assert open_box(local).open(open_box(local).seal("again")) == "again"
    assert (tmp_path / "store-secrets.key").stat().st_mode & 0o077 == 0


def test_shopify_times_in_either_apis_form_are_the_same_instant() -> None:
    rest, graphql = shopify_time("2026-03-01T07:00:00-05:00"), shopify_time("2026-03-01T12:00:00Z")
    assert rest is not None and rest == graphql
    assert [shopify_time(v) for v in (None, "", "yesterday", 1700000000)] == [None] * 4
