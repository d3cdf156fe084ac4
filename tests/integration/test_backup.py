"""A Redis that lost its data gets tokens, secrets, budgets and prompt labels back from a backup."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from adapters.ledger import Ledger
from adapters.prompt_labels import PromptLabels
from adapters.settings import get_settings
from adapters.signing import WebhookSecrets
from adapters.tokens import TokenStore
from entrypoints.cli.main import app

STORE = "backup-shop"


def _cli(*args: str) -> dict[str, Any]:
    out = CliRunner().invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    return dict(json.loads(out.stdout))


def test_state_lost_with_redis_comes_back_from_the_latest_backup(redis_client: Any) -> None:
    # Given a store's token, webhook secret, budget override, today's spend and a prompt label
    token = TokenStore(redis_client).create(STORE, "storefront").token
    secret = WebhookSecrets(redis_client).get_or_create(STORE)
    ledger = Ledger(redis_client)
    ledger.set_budget(STORE, 40_000_000)  # $0.04
    day = ledger.budget(STORE, 0).day
    redis_client.hset(f"wandstore:budget:day:{STORE}:{day}", mapping={"spent": 12_345, "reserved": 999})
    PromptLabels(redis_client).promote("product_copy", "production", "v1", note="launch")
    # When they are backed up, and the Redis then loses everything
    made = _cli("backup")
    assert made["keys"] == {
        "api tokens": 2,
        "budget overrides": 1,
        "budget spend today": 1,
        "prompt labels": 1,
        "webhook secrets": 1,
    }
    redis_client.flushdb()
    assert TokenStore(redis_client).verify(token) is None
    restored = _cli("restore", "latest")
    # Then the token verifies again, and the secret, budget, spend and label are as they were
    assert {r["what"]: r["written"] for r in restored["restored"]}["api tokens"] == 2
    principal = TokenStore(redis_client).verify(token)
    assert principal is not None and principal.may_access(STORE)
    assert WebhookSecrets(redis_client).get_or_create(STORE) == secret
    budget = ledger.budget(STORE, 0)
    assert budget.budget_nano == 40_000_000 and budget.spent_nano == 12_345
    assert budget.reserved_nano == 0  # holds of jobs that were in flight are not resurrected
    label = PromptLabels(redis_client).get("product_copy", "production")
    assert label is not None and label.version == "v1"
    # And the label epoch moved, so every worker re-reads the restored labels at its next call
    assert PromptLabels(redis_client).epoch() >= 1


def test_restore_keeps_keys_that_exist_unless_told_to_overwrite(redis_client: Any) -> None:
    # Given a backup of one budget, changed since
    ledger = Ledger(redis_client)
    ledger.set_budget(STORE, 40_000_000)
    _cli("backup")
    ledger.set_budget(STORE, 70_000_000)
    # When it is restored, Then the newer value is kept; with --overwrite it is replaced
    kept = _cli("restore")
    assert {r["what"]: r["kept"] for r in kept["restored"]}["budget overrides"] == 1
    assert ledger.budget(STORE, 0).budget_nano == 70_000_000
    _cli("restore", "--overwrite")
    assert ledger.budget(STORE, 0).budget_nano == 40_000_000


def test_backups_go_to_their_own_bucket_never_the_themes_one(redis_client: Any) -> None:
    from adapters.store import open_backup_store, open_store

    made = _cli("backup")
    settings = get_settings()
    assert open_backup_store(settings).exists(made["key"])
    assert not open_store(settings).exists(made["key"])
    listed = _cli("restore", "--list")
    assert made["key"] in listed["backups"]


def test_a_file_that_is_not_a_backup_is_refused_by_name(redis_client: Any) -> None:
    from adapters.store import open_backup_store

    open_backup_store(get_settings()).put("backups/bogus.json", b'{"format": "other"}')
    out = CliRunner().invoke(app, ["restore", "bogus.json"])
    assert out.exit_code != 0
    assert "not a backup in format 'wandstore-backup/1'" in str(out.exception) + out.output
