"""Prompt operations: labels in Redis reach running workers, sticky canaries, rollback, render, eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters.errors import InvalidInput
from adapters.prompt_labels import LabelState, PromptLabels
from adapters.settings import DEFAULT_PROMPTS_DIR
from agents.evals import load_cases
from agents.evals.assertions import ASSERTIONS, check_all
from agents.prompts import PromptRegistry
from agents.rollout import LabelResolver, choose
from agents.schemas import OUTPUT_MODELS
from agents.usage import CallContext
from entrypoints.cli.main import app
from tests.conftest import sample_products
from tests.helpers import arun, send_plain, wait_job

ROOT = Path(__file__).resolve().parents[2]
AGENT = "product_copy"
cli = CliRunner()


def run_cli(*args: str) -> Any:
    result = cli.invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


@pytest.fixture
def labels(redis_client: Any, services: Any) -> Iterator[PromptLabels]:
    """Product copy's labels, empty before and after; the worker's label cache forgotten too."""
    store = PromptLabels(redis_client)
    store.clear(AGENT)
    services.runtime.resolve_version.invalidate()
    yield store
    store.clear(AGENT)
    services.runtime.resolve_version.invalidate()


def registry() -> PromptRegistry:
    return PromptRegistry(DEFAULT_PROMPTS_DIR, OUTPUT_MODELS)


def test_label_move_reaches_a_running_worker(
    labels: PromptLabels, services: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints import compose

    broker = compose.process_broker()

    resolver = services.runtime.resolve_version
    monkeypatch.setattr(resolver, "ttl_s", 0.3)
    product = sample_products("electricshop")[2]

    def published_version() -> str:
        job = send_plain(broker, "product_copy", "batch", "electricshop", product, {})
        info = wait_job(services.status, job)
        assert info["status"] == "done", info
        return str(services.store.get(info["output_keys"][0]).json()["meta"]["prompt_version"])

    # Given a running worker serving the files' production version
    assert published_version() == "v1"
    # When ops move production to v2 (no restart, no deploy)
    moved = time.monotonic()
    assert run_cli("prompts", "promote", AGENT, "v2", "--label", "production").exit_code == 0
    # Then jobs published within the label cache's TTL carry v2
    seen = [published_version()]
    while seen[-1] != "v2" and time.monotonic() - moved < resolver.ttl_s + 3:
        seen.append(published_version())
    assert seen[-1] == "v2", seen
    assert time.monotonic() - moved < resolver.ttl_s + 3


def test_ten_percent_canary_takes_about_ten_percent_of_stores_always_the_same(
    labels: PromptLabels, services: Any
) -> None:
    # Given a canary with 10% of traffic
    labels.promote(AGENT, "canary", "v2", 10)
    resolver = LabelResolver(labels, registry(), ttl_s=60)
    stores = [f"store-{n}" for n in range(1000)]

    async def on_canary(weight_check: list[str]) -> set[str]:
        return {s for s in weight_check if await resolver(AGENT, CallContext(s, "t")) == "v2"}

    # When 1,000 stores ask twice
    first = arun(on_canary(stores))
    again = arun(on_canary(stores))
    # Then about 10% get v2, and the same ones both times
    assert 70 <= len(first) <= 130, len(first)
    assert first == again
    # And ramping up to 25% keeps them on the canary (nobody flips back)
    labels.promote(AGENT, "canary", "v2", 25)
    resolver.invalidate()
    ramped = arun(on_canary(stores))
    assert first <= ramped and 200 <= len(ramped) <= 300, len(ramped)


def test_split_by_shopper_is_sticky_within_one_store(labels: PromptLabels) -> None:
    # Given a 50% canary and the shopper id personalization puts in the call context
    labels.promote(AGENT, "canary", "v2", 50)
    resolver = LabelResolver(labels, registry(), ttl_s=60)

    async def versions() -> list[str | None]:
        out = []
        for n in range(400):
            ctx = CallContext("one-store", "personalize", extra={"shopper_id": f"shopper-{n}"})
            out.append(await resolver(AGENT, ctx))
        return out

    # Then shoppers of one store split, each always on the same side
    first = arun(versions())
    assert 140 <= first.count("v2") <= 260
    assert arun(versions()) == first


def test_rollback_restores_the_previous_version(labels: PromptLabels) -> None:
    # Given production moved from the files' default (v1) to v2
    assert run_cli("prompts", "promote", AGENT, "v2", "--label", "production").exit_code == 0
    assert labels.get(AGENT, "production").version == "v2"  # type: ignore[union-attr]
    # When ops roll it back
    result = run_cli("prompts", "rollback", AGENT, "--label", "production", "--note", "bad titles")
    # Then production points at v1 again, and the history says so
    assert result.exit_code == 0, result.output
    assert "production -> v1 (was v2)" in result.output
    assert labels.get(AGENT, "production").version == "v1"  # type: ignore[union-attr]
    resolver = LabelResolver(labels, registry(), ttl_s=0)
    assert arun(resolver(AGENT, CallContext("any-store", "t"))) == "v1"
    moves = [(e["action"], e["from_version"], e["version"]) for e in labels.history(AGENT)]
    assert moves == [("rollback", "v2", "v1"), ("promote", "v1", "v2")]
    history = run_cli("prompts", "history", AGENT, "--json")
    assert json.loads(history.stdout)["history"][0]["note"] == "bad titles"


def test_rolling_back_a_new_canary_ends_it(labels: PromptLabels) -> None:
    labels.promote(AGENT, "canary", "v2", 10)
    assert labels.rollback(AGENT, "canary") is None
    assert labels.get_all(AGENT) == {}
    with pytest.raises(InvalidInput, match="nothing to roll back"):
        labels.rollback(AGENT, "canary")


def test_bad_moves_are_refused(labels: PromptLabels) -> None:
    with pytest.raises(InvalidInput, match="unknown version 'v9' of product_copy"):
        run_cli("prompts", "promote", AGENT, "v9", "--label", "canary")
    with pytest.raises(InvalidInput, match="give --weight to a canary"):
        labels.promote(AGENT, "production", "v2", 10)
    with pytest.raises(InvalidInput, match="0 to 100"):
        labels.promote(AGENT, "canary", "v2", 150)
    assert labels.get_all(AGENT) == {}


def test_workers_keep_the_last_labels_seen_while_redis_is_unreachable(labels: PromptLabels) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.fixtures.redis import free_port

    # Given a worker that has read production -> v2
    labels.promote(AGENT, "production", "v2")
    resolver = LabelResolver(labels, registry(), ttl_s=0)
    assert arun(resolver(AGENT, CallContext("a-store", "t"))) == "v2"
    # When Redis can no longer be reached and the labels are read again
    resolver.source = PromptLabels(redis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)))
    assert arun(resolver.refresh(AGENT))["production"].version == "v2"
    # Then it keeps serving v2 rather than failing the call or falling back to the file default
    assert arun(resolver(AGENT, CallContext("a-store", "t"))) == "v2"


def test_calls_never_wait_on_a_stalled_label_read(labels: PromptLabels) -> None:
    import threading

    # Given a worker that has read production -> v2, and Redis that then stalls
    labels.promote(AGENT, "production", "v2")
    stalled = threading.Event()
    release = threading.Event()

    class Stalling:
        def get_all(self, agent: str) -> dict[str, LabelState]:
            if stalled.is_set():
                release.wait(10)
            return labels.get_all(agent)

    resolver = LabelResolver(Stalling(), registry(), ttl_s=0)
    assert arun(resolver(AGENT, CallContext("a-store", "t"))) == "v2"
    stalled.set()

    # When 50 calls come in while the label read hangs
    async def many() -> list[str | None]:
        return [await resolver(AGENT, CallContext(f"s-{n}", "t")) for n in range(50)]

    started = time.monotonic()
    got = arun(many(), timeout_s=5)
    # Then they are answered at once from the labels last seen, and only one read is in flight
    assert got == ["v2"] * 50 and time.monotonic() - started < 2.5  # a hung read would take 5 s
    assert len(resolver._inflight) == 1
    release.set()


def test_a_label_on_a_version_this_worker_lacks_is_skipped() -> None:
    labels = {
        "production": LabelState("v7", 100, None, 0),
        "canary": LabelState("v8", 100, None, 0),
    }
    choice = choose(AGENT, labels, "store", default="v1", known=["v1", "v2"])
    assert (choice.version, choice.label) == ("v1", "production")


def test_render_shows_exactly_the_messages_the_agent_sends(
    labels: PromptLabels, services: Any, gateway: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given the messages the gateway client really sends for a product
    sent: list[list[dict[str, str]]] = []
    real = services.runtime.gateway.complete

    async def spy(**kwargs: Any) -> Any:
        sent.append(kwargs["messages"])
        return await real(**kwargs)

    monkeypatch.setattr(services.runtime.gateway, "complete", spy)
    product = sample_products("kiids-kingdom")[4]
    options = {"brand_voice": "gentle, for new parents", "locale": "en-IN", "force_fresh": True}
    arun(generate_product_copy(services, "kiids-kingdom", product, options))
    # When the same product is rendered from a file
    path = tmp_path / "product.json"
    path.write_text(json.dumps({"products": [sample_products("kiids-kingdom")[0], product]}))
    opts = json.dumps({"brand_voice": options["brand_voice"], "locale": options["locale"]})
    args = ["prompts", "render", AGENT, "--input", str(path), "--product", str(product["id"])]
    result = run_cli(*args, "--options", opts, "--json")
    # Then render shows those very messages, with their token count and worst-case cost
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["prompt"] == "product_copy@v1"
    assert out["messages"] == sent[0]
    assert out["prompt_tokens"] > 500 and float(out["worst_case_usd"]) > 0


V2_EXPENSIVE = ("model: openai/gpt-4o-mini", "model: openai/gpt-4o")


@pytest.fixture
def eval_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A prompts folder where v2 is v1 on a model ~16x the price, and cases with a cost ceiling."""
    prompts = tmp_path / "prompts"
    (prompts / AGENT).mkdir(parents=True)
    v1 = (DEFAULT_PROMPTS_DIR / AGENT / "v1.md").read_text()
    (prompts / AGENT / "v1.md").write_text(v1)
    (prompts / AGENT / "v2.md").write_text(v1.replace(*V2_EXPENSIVE).replace("[production]", "[]"))
    shipped = (DEFAULT_PROMPTS_DIR / AGENT / "cases.jsonl").read_text().splitlines()[:2]
    cases = tmp_path / "cases.jsonl"
    lines = []
    for line in shipped:
        case = json.loads(line)
        case["assert"] = [{"type": "schema_valid"}, {"type": "max_cost_usd", "value": 0.001}]
        lines.append(json.dumps(case))
    cases.write_text("\n".join(lines) + "\n")
    return prompts, cases


def test_eval_exit_code_gates_a_version_that_breaks_an_assertion(
    eval_dir: tuple[Path, Path], gateway: Any
) -> None:
    prompts, cases = eval_dir
    env = {**os.environ, "PROMPTS_DIR": str(prompts), "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "entrypoints.cli.main", "prompts", "eval", AGENT, "--json"]
    # When both versions are evaluated, and v1 alone (two processes at once: each imports litellm)
    both = subprocess.Popen(
        [*command, "--versions", "v1,v2", "--cases", str(cases)], env=env, stdout=subprocess.PIPE
    )
    alone = subprocess.Popen(
        [*command, "--versions", "v1", "--cases", str(cases)], env=env, stdout=subprocess.PIPE
    )
    out_both, _ = both.communicate(timeout=60)
    out_alone, _ = alone.communicate(timeout=60)
    # Then the run with v2 exits non-zero naming v2's cost, and v1 alone exits zero
    report = json.loads(out_both)
    assert both.returncode == 1
    assert report["versions"]["v1"]["ok"] and not report["versions"]["v2"]["ok"]
    assert {(f["version"], f["assertion"]) for f in report["failures"]} == {("v2", "max_cost_usd")}
    assert report["versions"]["v2"]["assertions"]["max_cost_usd"] == {"passed": 0, "total": 2}
    assert alone.returncode == 0, out_alone
    assert json.loads(out_alone)["ok"] is True
    # And every call went to the gateway, skipping its cache (an eval measures the model)
    assert gateway.stats()["model_calls"] == 6 and gateway.stats()["cache_hits"] == 0


class Seen:
    """An eval outcome as assertions see it."""

    def __init__(self, output: dict[str, Any] | None, input_text: str = "", **kw: Any) -> None:
        self.output, self.input_text = output, input_text
        self.error: str | None = kw.get("error")
        self.repaired: bool = kw.get("repaired", False)
        self.cost_usd: float = kw.get("cost_usd", 0.0)
        self.latency_ms: float = kw.get("latency_ms", 0.0)


def verdicts(assertions: list[dict[str, Any]], seen: Seen) -> list[str | None]:
    return [reason for _, reason in check_all(ASSERTIONS.validate_python(assertions), seen)]


def test_grounded_flags_numbers_and_materials_the_input_lacks() -> None:
    source = json.dumps(
        {"title": "Flip Straw Tumbler | 20 OZ", "description": "Made of stainless steel, 1,000 ml"}
    )
    good = {"title": "Tumbler, 20 oz", "bullets": ["Stainless steel body", "Holds 1000 ml"]}
    bad = {"title": "Tumbler, 30 oz", "bullets": ["Bamboo lid", "Steel body"]}
    assert verdicts([{"type": "grounded"}], Seen(good, source)) == [None]
    reason = verdicts([{"type": "grounded"}], Seen(bad, source))[0]
    assert reason == "not in the input: number 30, material 'bamboo'"


def test_content_assertions_say_why_they_failed() -> None:
    output = {
        "title": "The ultimate tumbler",
        "bullets": ["One", "Two"],
        "description_html": "<p>Keeps <strong>IceFlow</strong> drinks cold</p>",
    }
    checks: list[dict[str, Any]] = [
        {"type": "length", "field": "bullets", "min": 3, "max": 6},
        {"type": "length", "field": "bullets", "each": True, "max": 3},
        {"type": "must_contain", "values": ["IceFlow drinks"]},
        {"type": "must_not_contain", "field": "title", "values": ["tumbler"]},
        {"type": "banned_phrases"},
        {"type": "max_cost_usd", "value": 0.001},
        {"type": "max_latency_ms", "value": 100},
    ]
    assert verdicts(checks, Seen(output, cost_usd=0.002, latency_ms=50)) == [
        "bullets: 2 items, fewer than 3",
        None,
        None,
        "title contains 'tumbler'",
        "banned phrase(s) 'ultimate'",
        "cost $0.002000 > $0.001",
        None,
    ]
    # Without an output, output assertions fail with the error; cost still counts
    failed = Seen(None, error="product_copy@v1 returned invalid output after one repair", cost_usd=0.0)
    assert verdicts(
        [{"type": "schema_valid"}, {"type": "banned_phrases"}, {"type": "max_cost_usd", "value": 1}], failed
    ) == [
        "product_copy@v1 returned invalid output after one repair",
        "no output (product_copy@v1 returned invalid output after one repair)",
        None,
    ]


def test_shipped_cases_still_fit_every_version_of_their_agent(services: Any) -> None:
    from agents.inputs import agent_class, variables_for

    # Given every shipped cases file
    reg = registry()
    files = sorted(DEFAULT_PROMPTS_DIR.glob("*/cases.jsonl"))
    assert AGENT in {f.parent.name for f in files}
    assert len(load_cases(DEFAULT_PROMPTS_DIR / AGENT / "cases.jsonl")) >= 12
    for path in files:
        agent = agent_class(path.parent.name)(services.runtime)
        # Then each case's input still builds the variables every version renders with
        for case in load_cases(path):
            for version in reg.versions(agent.name):
                prompt = reg.get(agent.name, version)
                assert prompt.render(variables_for(agent, case.input, prompt, case.options)), case.id


def test_a_bad_case_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    good = {"id": "a", "input": {}, "assert": [{"type": "schema_valid"}]}
    bad = {"id": "b", "input": {}, "assert": [{"type": "nope"}]}
    path.write_text(f"{json.dumps(good)}\n{json.dumps(bad)}\n")
    with pytest.raises(InvalidInput, match=r"cases\.jsonl:2: invalid case"):
        load_cases(path)


def test_list_shows_labels_and_traffic(labels: PromptLabels) -> None:
    labels.promote(AGENT, "canary", "v2", 10)
    rows = json.loads(run_cli("prompts", "list", "--json").stdout)["prompts"]
    mine = {r["version"]: r for r in rows if r["agent"] == AGENT}
    assert mine["v1"]["labels"] == "production (file)" and mine["v1"]["traffic"] == "90%"
    assert mine["v2"]["labels"] == "canary 10%, staging (file)" and mine["v2"]["traffic"] == "10%"


def test_diff_shows_what_changed() -> None:
    out = run_cli("prompts", "diff", AGENT, "v1", "v2").output
    assert "--- product_copy@v1" in out and "+++ product_copy@v2" in out
    assert "-temperature: 0.4" in out and "+temperature: 0.3" in out


def test_costs_by_prompt_reports_failures_and_latency_per_version(
    labels: PromptLabels, services: Any, gateway: Any
) -> None:
    from pipelines.product_copy import generate_product_copy

    # Given copy written on v1 (its first answer invalid, then repaired), then on v2
    gateway.faults([{"kind": "invalid_output"}])
    fresh = {"force_fresh": True}
    arun(generate_product_copy(services, "stanley1913", sample_products()[7], fresh))
    labels.promote(AGENT, "production", "v2")
    services.runtime.resolve_version.invalidate()
    arun(generate_product_copy(services, "stanley1913", sample_products()[8], fresh))
    # When ops ask for costs by prompt version
    rows = json.loads(run_cli("costs", "--by", "prompt", "--json").stdout)["rows"]
    got = {r["prompt"]: r for r in rows}
    # Then each version shows its invalid answers, repairs and latency
    v1, v2 = got["product_copy@v1"], got["product_copy@v2"]
    assert (v1["calls"], v1["invalid"], v1["repaired"], v1["invalid_rate"]) == (2, 1, 1, 0.5)
    assert (v2["calls"], v2["invalid"], v2["repaired"], v2["invalid_rate"]) == (1, 0, 0, 0.0)
    assert v1["latency_ms_avg"] > 0 and v2["latency_ms_avg"] > 0
    table = run_cli("costs", "--by", "prompt").output
    assert "prompt versions: failures and latency" in table and "50.0%" in table
