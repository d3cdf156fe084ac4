"""The rules of drafts: ids, policy, copy checks, diffs and what counts as a merchant's edit in Shopify."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import InvalidInput
from domain import drafts as rules


def good_copy(**changes: Any) -> dict[str, Any]:
    body = {
        "title": "Classic Legendary Bottle 1.4 QT",
        "description_html": "<p>Keeps drinks cold for 35 hours.</p>",
        "bullets": ["Steel", "Leakproof lid", "Lifetime warranty"],
        "seo_title": "Classic Legendary Bottle",
        "meta_description": "A steel bottle that keeps drinks cold for 35 hours.",
        "image_alts": [{"image_id": "11", "alt": "A green steel bottle"}],
    }
    body.update(changes)
    return body


def test_a_job_s_draft_id_is_stable_and_store_scoped() -> None:
    first = rules.draft_id_for("stanley1913", "copy", "job-1")
    assert first == rules.draft_id_for("stanley1913", "copy", "job-1")
    assert first != rules.draft_id_for("electricshop", "copy", "job-1")
    assert first != rules.draft_id_for("stanley1913", "theme", "job-1")
    assert rules.check_draft_id(first) == first
    assert rules.draft_key("stanley1913", first) == f"stores/stanley1913/drafts/{first}.json"


@pytest.mark.parametrize("bad", ["../x", "ABC", "", 7])
def test_a_draft_id_that_is_no_uuid_is_refused_before_it_becomes_a_key(bad: Any) -> None:
    with pytest.raises(InvalidInput, match="draft id"):
        rules.draft_key("stanley1913", bad)


def test_defaults_are_copy_auto_and_themes_reviewed() -> None:
    assert rules.policy_of(None, "copy") == "auto"
    assert rules.policy_of(None, "theme") == "review"
    assert rules.policy_of({"copy": "review", "theme": "auto"}, "theme") == "auto"


def test_auto_goes_live_only_when_every_check_passes_and_the_critic_approved() -> None:
    passing = [rules.check("a", True)]
    failing = [rules.check("a", True), rules.check("b", False, "too long")]
    assert rules.goes_live("auto", passing)
    assert not rules.goes_live("auto", failing)
    assert not rules.goes_live("review", passing)
    assert rules.goes_live("auto", passing, critic_approved=True)
    assert not rules.goes_live("auto", passing, critic_approved=False)


def test_copy_checks_pass_good_copy_and_name_what_fails() -> None:
    assert rules.checks_pass(rules.copy_checks(good_copy(), ["11"]))
    bad = rules.copy_checks(good_copy(seo_title="x" * 61, bullets=["one"]), ["11", "12"])
    failed = {c["name"]: c["detail"] for c in bad if not c["passed"]}
    assert set(failed) == {"seo_title_length", "bullets", "image_alts"}
    assert "61 of at most 60" in failed["seo_title_length"] and "12" in failed["image_alts"]


def test_copy_checks_fail_active_text() -> None:
    bad = rules.copy_checks(good_copy(meta_description="click javascript:alert(1)"), ["11"])
    assert [c["name"] for c in bad if not c["passed"]] == ["safe_markup"]


def test_the_diff_shows_changes_against_live_copy_and_the_merchant_s_text() -> None:
    draft = good_copy()
    live = good_copy(title="Old title")
    merchant = rules.merchant_fields(
        {"title": "Bottle", "body_html": "<p>Old words</p>", "images": [{"id": 11, "alt": None}]}
    )
    diff = rules.copy_diff(live, draft, merchant)
    changed = {row["field"] for row in diff["live"] if row["changed"]}
    assert changed == {"title"}
    by_field = {row["field"]: row for row in diff["catalog"]}
    assert by_field["title"]["before"] == "Bottle" and by_field["title"]["changed"]
    assert rules.copy_diff(None, draft, merchant)["live"] is None


def test_long_text_changes_carry_a_line_diff() -> None:
    row = rules.field_diff("description_html", "line one\nline two", "line one\nline 2")
    assert row["changed"] and "-line two" in row["lines"] and "+line 2" in row["lines"]


def test_a_product_changed_in_shopify_is_a_conflict_unless_only_we_or_nothing_changed_it() -> None:
    source = {"updated_at": "2025-01-01T00:00:00Z", "hash": rules.content_hash("Mug", "<p>Warm</p>")}
    untouched = {"updated_at": "2025-01-01T00:00:00Z", "title": "Mug", "description_html": "<p>Warm</p>"}
    price_only = {"updated_at": "2025-02-01T00:00:00Z", "title": "Mug", "description_html": "<p>Warm</p>"}
    edited = {"updated_at": "2025-02-01T00:00:00Z", "title": "Big mug", "description_html": "<p>Warm</p>"}
    ours = rules.content_hash("Big mug", "<p>Warm</p>")
    assert not rules.changed_since(source, untouched)
    assert not rules.changed_since(source, price_only)
    assert rules.changed_since(source, edited)
    assert not rules.changed_since(source, edited, [ours])
    # The same instant written as the REST API writes it (an offset) and as GraphQL does (UTC)
    rest = {"updated_at": "2025-01-01T05:00:00-05:00", "hash": "sha256:other"}
    assert not rules.changed_since(rest, {**edited, "updated_at": "2025-01-01T10:00:00Z"})


def test_a_stored_copy_draft_gets_its_diff_when_read_the_same_as_from_the_raw_product() -> None:
    product = {
        "id": 7,
        "title": "Bottle <script>alert(1)</script> &amp; cup",
        "body_html": '<p onclick="x()">Cold\n&lt;b&gt; 2 &lt; 3</p><script>steal()</script>',
        "images": [{"id": 11, "alt": "javascript:alert(1)"}],
        "variants": [{"sku": "B-1", "title": "<b>Green</b>"}],
    }
    inert = rules.inert_product(product)
    assert "<script" not in str(inert) and "javascript:" not in str(inert) and "onclick" not in str(inert)
    assert inert["variants"][0]["title"] == "Green"
    assert rules.inert_product(inert) == inert  # sanitized twice is sanitized once
    live = good_copy(title="The old title")
    stored = {
        "kind": "copy",
        "body": good_copy(),
        "live_before": live,
        "source": {"hash": "h", "product": inert},
    }
    doc = rules.present_copy(stored)
    assert "live_before" not in doc and doc["source"]["product"] == inert
    # The diff from the stored (inert) product is the one the raw product gives.
    assert doc["diff"] == rules.copy_diff(live, good_copy(), rules.merchant_fields(product))
    assert {r["field"] for r in doc["diff"]["live"] if r["changed"]} == {"title"}
    title = next(r for r in doc["diff"]["catalog"] if r["field"] == "title")
    assert title["changed"] and "<script" not in title["before"]


def test_a_copy_draft_with_nothing_live_before_has_no_live_diff_and_an_old_stored_diff_is_kept() -> None:
    fresh = rules.present_copy({"kind": "copy", "body": good_copy(), "live_before": None, "source": {}})
    assert fresh["diff"]["live"] is None and fresh["diff"]["catalog"][0]["before"] is None
    old = {
        "kind": "copy",
        "body": good_copy(),
        "diff": {"live": None, "catalog": []},
        "source": {"product": {}},
    }
    assert rules.present_copy(dict(old)) == old
