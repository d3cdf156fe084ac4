"""The storefront-day cost benchmark: a small day through the service's own cohort keying."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

import pytest

from bench.call_cost import GPT, HAIKU, per_call_usd
from bench.cohort_replay import FIELDS, Knobs, Replay
from bench.storefront_day import main, price
from bench.storefront_traffic import EDIT_CHANGES_ROW, Day, catalog_edits, generate

REQUESTS = 20_000
DEFAULTS = Knobs("defaults")


@pytest.fixture(scope="module")
def replay() -> Replay:
    r = Replay(generate(Day(requests=REQUESTS, stores=40), keep_lists=True))
    r.prepare()
    return r


def test_the_replay_shares_a_generation_exactly_when_the_service_would(replay: Replay) -> None:
    # Given the service's own keying of the first requests, each with its own context:
    # context -> cohort -> shortlist -> digest
    from agents.personalizer import PersonalizerAgent
    from pipelines.cohorts import cohort_of, parse_context, shortlist
    from pipelines.personalize import CACHE
    from pipelines.result_cache import cache_key

    agent = PersonalizerAgent(cast(Any, None))
    service = replay.service
    layer, keyed = replay.keyed(DEFAULTS)
    pairs = set()
    for i in range(5000):
        store = replay.traffic.stores[replay.traffic.store_of[i]].slug
        catalog = replay.catalog(replay.traffic.store_of[i])
        cohort = cohort_of(parse_context(replay.traffic.context(i)), catalog)
        rows = [c.prompt_row for c in shortlist(catalog, cohort)]
        variables = agent.variables(cohort.signals(), rows)
        digest = cache_key(CACHE, store, service.prompt_ref, service.model, variables)
        pairs.add((keyed.of_atom[layer.atom_of[i]], digest))
    # Then the replay's identities and the service's result-cache keys are one to one
    identities = {identity for identity, _ in pairs}
    digests = {digest for _, digest in pairs}
    assert len(identities) == len(digests) == len(pairs)
    assert len(pairs) > 300  # many cohorts, not a degenerate day


def test_finer_cohorts_make_more_model_calls(replay: Replay) -> None:
    # When the same day is keyed coarser and coarser
    default = replay.run(DEFAULTS)
    no_categories = replay.run(Knobs("no categories", fields=frozenset(FIELDS) - {"categories"}))
    segment_locale = replay.run(Knobs("segment + locale", fields=frozenset({"segment", "locale"})))
    per_store = replay.run(Knobs("store", fields=frozenset()))
    # Then each coarsening has fewer cohorts and makes fewer calls
    outcomes = [default, no_categories, segment_locale, per_store]
    cohorts = [o.cohorts for o in outcomes]
    calls = [o.paid_calls for o in outcomes]
    assert cohorts == sorted(cohorts, reverse=True) and len(set(cohorts)) == 4, cohorts
    assert calls == sorted(calls, reverse=True) and len(set(calls)) == 4, calls
    assert per_store.cohorts == 40
    assert default.hit_ratio < per_store.hit_ratio


def test_a_longer_ttl_makes_fewer_calls_and_the_gateway_cache_answers_short_ones(replay: Replay) -> None:
    # When only the result cache's TTL changes
    by_ttl = {ttl: replay.run(Knobs(f"{ttl}", ttl_s=ttl)) for ttl in (300, 3600, 4 * 3600, 24 * 3600)}
    # Then longer TTLs start fewer generations, and from the gateway's TTL up, make fewer calls
    generations = [o.generations for o in by_ttl.values()]
    assert generations == sorted(generations, reverse=True) and len(set(generations)) == 4, generations
    assert by_ttl[3600].paid_calls > by_ttl[4 * 3600].paid_calls > by_ttl[24 * 3600].paid_calls
    # And below the prompt's gateway_cache_ttl, AI Gateway answers the extra generations for free
    assert replay.service.gateway_ttl_s == 3600
    assert by_ttl[300].paid_calls < by_ttl[300].generations
    assert abs(by_ttl[300].paid_calls - by_ttl[3600].paid_calls) <= 0.02 * by_ttl[3600].paid_calls
    assert all(o.paid_calls == o.generations for ttl, o in by_ttl.items() if ttl >= 3600)


def test_catalog_edits_invalidate_exactly_the_cohorts_whose_digest_they_change(replay: Replay) -> None:
    # Given the day's edits that change a candidate row, and the service's digest of each shortlist
    from agents.personalizer import PersonalizerAgent
    from pipelines.cohorts import Candidate, Catalog, Cohort, shortlist
    from pipelines.personalize import CACHE
    from pipelines.result_cache import cache_key

    agent = PersonalizerAgent(cast(Any, None))
    service = replay.service
    _, keyed = replay.keyed(DEFAULTS)

    def digest(store: int, catalog: Catalog, cats: tuple[str, ...]) -> str:
        cohort = Cohort("new", "en", "mobile", "direct", cats, "empty")
        variables = agent.variables(cohort.signals(), [c.prompt_row for c in shortlist(catalog, cohort)])
        slug = replay.traffic.stores[store].slug
        return cache_key(CACHE, slug, service.prompt_ref, service.model, variables)

    rate = 50.0
    edits = [e for e in catalog_edits(replay.traffic, rate) if EDIT_CHANGES_ROW[e.kind]][:12]
    # When the replay works out which shortlists each edit invalidates
    invalid = replay.invalidations(keyed, rate)
    for e in edits:
        catalog = replay.catalog(e.store)
        pid = catalog.products[e.product].id
        # (A new Candidate: a copy would keep the cached `prompt_row` of the old price.)
        edited = Catalog.of(
            Candidate.model_validate({**c.model_dump(), "price": "1.00"}) if c.id == pid else c
            for c in catalog.products
        )
        groups = [(g, cats) for g, (s, cats) in enumerate(keyed.groups) if s == e.store]
        seen = e.t + service.snapshot_ttl_s
        marked = {g for g, _ in groups if seen in invalid.get(g, ())}
        changed = {g for g, cats in groups if digest(e.store, catalog, cats) != digest(e.store, edited, cats)}
        # Then they are exactly the ones whose result-cache key a price change moves
        assert marked == changed, (e, marked, changed)
    # And over the day, more edits mean more generations, and no edits no copy calls
    quiet, busy = replay.run(Knobs("0", edits_per_store=0)), replay.run(Knobs("200", edits_per_store=200))
    assert busy.generations > quiet.generations
    assert quiet.copy_calls == 0 < busy.copy_calls


def test_dollars_are_model_calls_times_one_calls_list_price(replay: Replay) -> None:
    # When an outcome is priced
    outcome = replay.run(DEFAULTS)
    usd = price(outcome)
    # Then each model's dollars per 1M requests are its calls per 1M times one call's price
    for model in (GPT, HAIKU):
        per_million = Decimal(outcome.paid_calls) * 1_000_000 / Decimal(outcome.requests)
        assert usd[model] == per_million * per_call_usd(model)
        assert per_call_usd(model) > 0
    # And Haiku 4.5 costs more per call than gpt-4o-mini at list prices
    assert usd[HAIKU] > usd[GPT] > 0


def test_the_cli_prints_json_for_a_small_day() -> None:
    # When the benchmark runs from its command line
    printed: list[str] = []
    result = main(["--requests", "3000", "--stores", "10", "--json"], out=printed.append)
    # Then it prints the rows and whether the defaults meet the budget
    doc = json.loads(printed[0])
    assert doc["requests"] == 3000 and doc["rows"][0]["knob"] == "defaults"
    assert doc["defaults_meet_budget"] == result.defaults.meets
    assert {"gpt-4o-mini", "Claude Haiku 4.5"} <= set(doc["rows"][0]["usd_per_1m"])
