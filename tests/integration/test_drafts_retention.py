"""Old decided copy drafts are removed, row and body; pending, live, push-waiting and theme drafts stay."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.drafts import draft_key
from tests.fixtures.drafts import old_draft
from tests.fixtures.stores import add_store

STORE = "drafts-retention"
OTHER = "drafts-retention-b"
DAY_S = 86_400.0


def _exists(services: Any, store: str, draft_id: str) -> tuple[bool, bool, bool]:
    """(row in Redis, in the store's index, body in the object store)."""
    from pipelines.drafts import INDEX, PREFIX

    row = services.redis.exists(f"{PREFIX}{store}:{draft_id}") == 1
    indexed = services.redis.zscore(INDEX + store, draft_id) is not None
    return row, indexed, services.store.exists(draft_key(store, draft_id))


@pytest.fixture
def decided(services: Any) -> dict[str, str]:
    """One draft in each state that matters, all created long ago and decided just now."""
    from pipelines.drafts import Drafts, target_of

    drafts = Drafts(services.redis, services.store)
    ids: dict[str, str] = {}

    def make(name: str, n: int, *, store: str = STORE, kind: str = "copy") -> str:
        draft = old_draft(n, store=store, kind=kind)
        drafts.propose(
            draft, target_of(draft["kind"], draft["product_id"]) if draft["kind"] == "copy" else ""
        )
        ids[name] = draft["id"]
        return draft["id"]

    make("pending", 1)
    drafts.move(
        STORE, make("rejected", 2), allowed=("pending",), to="rejected", decision={"action": "reject"}
    )
    drafts.move(STORE, make("live", 3), allowed=("pending",), to="live", live_target="copy:p3")
    # A product whose first draft went live, then a newer one: the first is `approved`, replaced
    replaced = old_draft(4, store=STORE)
    drafts.propose(replaced, "copy:p4")
    drafts.move(STORE, replaced["id"], allowed=("pending",), to="live", live_target="copy:p4")
    newer = {**old_draft(5, store=STORE), "product_id": "p4"}
    drafts.propose(newer, "copy:p4")
    drafts.move(STORE, newer["id"], allowed=("pending",), to="live", live_target="copy:p4")
    ids["replaced"], ids["replacing"] = replaced["id"], newer["id"]
    pushing = make("pushing", 6)
    drafts.move(
        STORE,
        pushing,
        allowed=("pending",),
        to="rejected",
        fields={"shopify": {"status": "queued", "attempts": 0}},
    )
    drafts.move(STORE, make("theme", 7, kind="theme"), allowed=("pending",), to="rejected")
    recent = make("recent", 8)
    drafts.move(STORE, recent, allowed=("pending",), to="rejected")
    # Decided "later": a day after the others (the prune below looks a day and a half ahead)
    services.redis.hset(f"wandstore:draft:{STORE}:{recent}", "updated_at", str(time.time() + DAY_S))
    drafts.move(OTHER, make("other", 9, store=OTHER), allowed=("pending",), to="rejected")
    return ids


def test_decided_copy_drafts_past_the_retention_are_removed_and_the_rest_stay(
    services: Any, decided: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines import drafts_retention
    from pipelines.drafts import Drafts
    from pipelines.drafts_retention import prune

    monkeypatch.setattr(drafts_retention, "PAGE", 2)  # pages of two: kept drafts span pages

    # When drafts decided more than a day ago are pruned, a day and a half from now
    done = prune(services.redis, services.store, older_than_s=DAY_S, now=time.time() + 1.5 * DAY_S,
                 stores=[STORE, OTHER])  # fmt: skip
    # Then the rejected and the replaced copy drafts are gone: row, index entry and body
    gone = {"rejected", "replaced", "other"}
    for name in gone:
        store = OTHER if name == "other" else STORE
        assert _exists(services, store, decided[name]) == (False, False, False), name
    assert done.pruned == 3 and done.by_store == {STORE: 2, OTHER: 1}
    # And what waits for a person, is live, waits for its Shopify push, is a theme's or was
    # decided within the retention stays, whole
    for name in ("pending", "live", "replacing", "pushing", "theme", "recent"):
        assert _exists(services, STORE, decided[name]) == (True, True, True), name
    listed = {d["id"] for d in Drafts(services.redis, services.store).list(STORE)}
    assert listed == {decided[n] for n in ("pending", "live", "replacing", "pushing", "theme", "recent")}
    # A second pass finds nothing more to do
    again = prune(services.redis, services.store, older_than_s=DAY_S, now=time.time() + 1.5 * DAY_S,
                  stores=[STORE, OTHER])  # fmt: skip
    assert again.pruned == 0


def test_nothing_is_removed_within_the_retention(services: Any, decided: dict[str, str]) -> None:
    from pipelines.drafts_retention import prune

    done = prune(services.redis, services.store, older_than_s=90 * DAY_S, stores=[STORE, OTHER])
    assert done.pruned == 0
    assert _exists(services, STORE, decided["rejected"]) == (True, True, True)


def test_one_process_of_the_fleet_prunes_each_hour_on_a_thread_of_its_own(
    services: Any, decided: dict[str, str]
) -> None:
    from pipelines.drafts_retention import _LOCK
    from pipelines.maintenance import Maintainer

    # Given a rejected draft decided 100 days ago, and a retention of 90
    row = f"wandstore:draft:{STORE}:{decided['rejected']}"
    services.redis.hset(row, "updated_at", str(time.time() - 100 * DAY_S))
    broker = SimpleNamespace(heartbeat_timeout=15_000)  # all a Maintainer reads of its broker to start
    first = Maintainer(broker, lost_after_s=None, draft_retention_days=90)
    second = Maintainer(broker, lost_after_s=None, draft_retention_days=90)
    try:
        # When one maintainer takes the hour's turn (the session's own worker runs the same
        # maintenance and may take a freed turn first)
        for _ in range(5):
            services.redis.delete(_LOCK)
            if (thread := first.prune_drafts()) is not None:
                break
        assert thread is not None and thread.name == "drafts-prune"
        thread.join(timeout=30)
        assert not thread.is_alive()
        # Then the other does not, for the hour
        assert second.prune_drafts() is None
        assert 0 < services.redis.pttl(_LOCK) <= 3_600_000
    finally:
        services.redis.delete(_LOCK)
    # And the pass removed the old decision, and nothing decided within the 90 days
    assert _exists(services, STORE, decided["rejected"]) == (False, False, False)
    assert _exists(services, STORE, decided["replaced"]) == (True, True, True)


def test_the_procfile_workers_prune_on_their_own(lane: Any) -> None:
    from pipelines.drafts import PREFIX, Drafts
    from pipelines.drafts_retention import _LOCK

    # Given a copy draft rejected 100 days ago in the lane's Redis and bucket (default retention: 90)
    drafts = Drafts(lane.client, lane.objects())
    draft = old_draft(20, store=OTHER)
    drafts.propose(draft, "copy:p20")
    drafts.move(OTHER, draft["id"], allowed=("pending",), to="rejected")
    row = f"{PREFIX}{OTHER}:{draft['id']}"
    lane.client.hset(row, "updated_at", str(time.time() - 100 * DAY_S))
    # When the hour's turn, taken when the workers booted, comes round again
    lane.client.delete(_LOCK)
    # Then a worker's maintenance (every 5 s) removes it, row and body
    deadline = time.monotonic() + 30
    while lane.client.exists(row) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling Redis for the workers' pass, not a test sleep
    assert not lane.client.exists(row), "no worker pruned the old draft within 30 s"
    assert not lane.objects().exists(draft_key(OTHER, draft["id"]))


@pytest.fixture
def cli_objects(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The object store the CLI opens from the settings, for the drafts written here too."""
    from adapters.settings import get_settings
    from adapters.store import open_store

    monkeypatch.setattr(services, "store", open_store(get_settings()))


def test_the_cli_prunes_with_a_table_or_json(
    services: Any, cli_objects: None, decided: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.settings import load_settings
    from entrypoints.cli.main import app

    add_store(services.redis, STORE)
    add_store(services.redis, OTHER)
    runner = CliRunner()
    # A retention of 0 keeps everything, and the command says how to prune anyway
    with monkeypatch.context() as patched:
        patched.setattr("adapters.settings.get_settings", lambda: load_settings(draft_retention_days=0))
        refused = runner.invoke(app, ["drafts", "prune", "--store", STORE])
    assert refused.exit_code == 2 and "--older-than-days" in refused.output
    assert _exists(services, STORE, decided["rejected"]) == (True, True, True)
    # --older-than-days 0: every decided copy draft of the store goes (the recent one is "decided" tomorrow)
    got = runner.invoke(app, ["drafts", "prune", "--store", STORE, "--older-than-days", "0", "--json"])
    assert got.exit_code == 0, got.output
    result = json.loads(got.stdout)
    assert result["pruned"] == 2 and result["by_store"] == {STORE: 2}  # rejected and replaced
    assert _exists(services, STORE, decided["rejected"]) == (False, False, False)
    assert _exists(services, OTHER, decided["other"]) == (True, True, True)  # not asked for
    table = runner.invoke(app, ["drafts", "prune", "--store", OTHER, "--older-than-days", "0"])
    assert table.exit_code == 0 and "1 of 1 removed" in table.stdout


def test_prune_has_help() -> None:
    from entrypoints.cli.main import app

    got = CliRunner().invoke(app, ["drafts", "prune", "--help"])
    assert got.exit_code == 0 and "--older-than-days" in got.stdout
