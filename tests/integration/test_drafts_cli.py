"""`wandstore-agents drafts`: list, show, approve with edits, reject, and feedback as eval cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import sample_products
from tests.fixtures.stores import add_store
from tests.helpers import arun

STORE = "cli-review"


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def test_a_reviewer_lists_shows_edits_approves_and_rejects_from_the_cli(
    services: Any, gateway: Any, tmp_path: Path
) -> None:
    from adapters.settings import get_settings
    from adapters.store import open_store
    from entrypoints.cli.main import app
    from pipelines.product_copy import generate_product_copy

    # Given a store set to review its copy from the CLI, and two drafts waiting (in the store the CLI uses)
    runner = CliRunner()
    add_store(services.redis, STORE)
    policy = runner.invoke(app, ["stores", "add", STORE, "--publish-copy", "review", "--json"])
    assert policy.exit_code == 0, policy.output
    assert json.loads(policy.stdout)["publish"] == {"copy": "review", "theme": "review"}
    bad = runner.invoke(app, ["stores", "add", STORE, "--publish-theme", "sometimes"])
    assert bad.exit_code != 0 and "publish" in bad.output
    services.store = open_store(get_settings())
    products = sample_products("stanley1913")[:2]
    made = [arun(generate_product_copy(services, STORE, p)) for p in products]
    assert all(not m.live and m.draft_id for m in made)
    # When the reviewer lists them
    listed = runner.invoke(app, ["drafts", "list", STORE, "--status", "pending", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {d["id"] for d in json.loads(listed.stdout)["drafts"]} == {m.draft_id for m in made}
    table = runner.invoke(app, ["drafts", "list", STORE])
    assert table.exit_code == 0 and made[0].draft_id[:8] in table.output
    # And shows one: its checks and its changes against the catalog
    shown = runner.invoke(app, ["drafts", "show", STORE, made[0].draft_id])
    assert shown.exit_code == 0 and "checks" in shown.output and "changes against catalog" in shown.output
    # When the first is approved with an edit carrying markup
    approved = runner.invoke(
        app, ["drafts", "approve", STORE, made[0].draft_id, "--set", "title=<i>Iceflow</i> flask", "--json"]
    )
    # Then it is live, sanitized, at the storefront's key, and the decision is recorded
    assert approved.exit_code == 0, approved.output
    draft = json.loads(approved.stdout)
    assert draft["status"] == "live" and draft["final"]["title"] == "Iceflow flask"
    assert draft["decisions"][-1]["by"] == "cli" and draft["decisions"][-1]["changes"][0]["field"] == "title"
    live = services.store.get(f"stores/{STORE}/products/{made[0].product_id}/copy.json").json()
    assert live["title"] == "Iceflow flask"
    # When the second is rejected, and an unknown field or a decided draft is refused
    reject = ["drafts", "reject", STORE, made[1].draft_id, "-r", "Too much hype", "--json"]
    rejected = runner.invoke(app, reject)
    assert rejected.exit_code == 0 and json.loads(rejected.stdout)["status"] == "rejected"
    again = runner.invoke(app, ["drafts", "approve", STORE, made[1].draft_id])
    assert again.exit_code == 2 and "rejected" in again.output
    bad = runner.invoke(app, ["drafts", "approve", STORE, made[0].draft_id, "--set", "price=1"])
    assert bad.exit_code == 2
    # Then the edit and the rejection are feedback, written out as cases `prompts eval` reads
    cases_file = tmp_path / "feedback.jsonl"
    out = runner.invoke(app, ["drafts", "feedback", "product_copy", "--cases", str(cases_file), "--json"])
    assert out.exit_code == 0, out.output
    from agents.evals.cases import load_cases

    cases = load_cases(cases_file)
    mine = [c for c in cases if c.store == STORE]
    assert len(mine) == 2 and {a.type for c in mine for a in c.assertions} >= {"schema_valid", "grounded"}
