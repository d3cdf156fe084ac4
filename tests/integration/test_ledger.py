"""The usage ledger against the dev gateway: exact money, cache layers, exactly-once, budgets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from adapters.errors import BudgetExceeded
from tests.conftest import sample_products
from tests.helpers import arun, wait_job


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


def totals(services: Any, **filters: Any) -> dict[str, Any]:
    from adapters.costs import cost_report
    from adapters.ledger import Ledger

    return dict(cost_report(Ledger(services.redis), **filters)["totals"])


def list_price(prompt: int, cached: int, completion: int) -> Decimal:
    """USD at litellm's gpt-4o-mini prices, computed here independently of the code under test."""
    from agents._litellm import litellm

    table = litellm().model_cost["gpt-4o-mini"]
    rate = {k: Decimal(str(table[k])) for k in table if k.endswith("token_cost") or k.endswith("per_token")}
    return (
        (prompt - cached) * rate["input_cost_per_token"]
        + cached * rate["cache_read_input_token_cost"]
        + completion * rate["output_cost_per_token"]
    )


def copy(services: Any, store: str, product: dict[str, Any], options: Any = None, job_id: str = "") -> Any:
    from pipelines.product_copy import generate_product_copy

    return arun(generate_product_copy(services, store, product, options, job_id=job_id))


def test_cost_is_the_gateways_token_counts_times_litellm_prices(services: Any, gateway: Any) -> None:
    # Given one product written fresh
    copy(services, "stanley1913", sample_products("stanley1913")[10])
    # When the ledger is read
    got = totals(services)
    # Then tokens are the gateway's own counts and the cost is exactly those at litellm's prices
    stats = gateway.stats()
    assert stats["model_calls"] == 1 and stats["cached_tokens"] == 0
    assert got["calls"] == 1
    assert (got["prompt_tokens"], got["completion_tokens"]) == (
        stats["prompt_tokens"],
        stats["completion_tokens"],
    )
    assert Decimal(got["cost_usd"]) == list_price(stats["prompt_tokens"], 0, stats["completion_tokens"])
    assert got["gateway_cache_hits"] == got["result_cache_hits"] == 0


def test_cached_prompt_tokens_are_priced_at_the_cached_rate(services: Any, gateway: Any) -> None:
    # Given two products of one store: the second call's system prompt is in the provider's cache
    for product in sample_products("stanley1913")[11:13]:
        copy(services, "stanley1913", product)
    stats = gateway.stats()
    assert stats["cached_tokens"] > 0
    # When the ledger is read
    got = totals(services)
    # Then the cached tokens are counted and priced at the cached-input rate, to the nano-dollar
    assert got["cached_prompt_tokens"] == stats["cached_tokens"]
    expected = list_price(stats["prompt_tokens"], stats["cached_tokens"], stats["completion_tokens"])
    assert Decimal(got["cost_usd"]) == expected
    assert expected < list_price(stats["prompt_tokens"], 0, stats["completion_tokens"])


def test_a_gateway_hit_costs_nothing_and_counts_as_a_gateway_hit(services: Any, gateway: Any) -> None:
    # Given a product written once, then again after its result-cache entry is gone
    product = sample_products("electricshop")[10]
    first = copy(services, "electricshop", product)
    services.redis.delete(*services.redis.keys("wandstore:rc:*"))
    second = copy(services, "electricshop", product)
    # Then the second call was a gateway HIT: counted as a call and a hit, at no cost
    assert second.meta["served"] == "gateway_cache" and gateway.stats()["cache_hits"] == 1
    got = totals(services)
    assert got["calls"] == 2 and got["gateway_cache_hits"] == 1
    assert got["cost_usd"] == first.meta["cost_usd"]
    # and what it saved is the list price of the replayed answer
    assert got["saved_usd"] == first.meta["cost_usd"]


def test_a_result_cache_hit_costs_nothing_and_counts_as_a_result_cache_hit(
    services: Any, gateway: Any
) -> None:
    # Given a product written once, then asked for again
    product = sample_products("electricshop")[11]
    first = copy(services, "electricshop", product)
    copy(services, "electricshop", product)
    # Then one model call was made and the repeat is a result-cache hit at no cost
    got = totals(services)
    assert gateway.stats()["requests"] == 1
    assert got["calls"] == 1 and got["result_cache_hits"] == 1 and got["gateway_cache_hits"] == 0
    assert got["cost_usd"] == first.meta["cost_usd"] and got["saved_usd"] == first.meta["cost_usd"]


def test_a_redelivered_message_is_counted_once(services: Any, worker: Any, gateway: Any) -> None:
    from dramatiq import Message

    from entrypoints import compose

    broker = compose.process_broker()

    # Given a job that forces a fresh generation, processed once
    product = sample_products("kiids-kingdom")[10]
    message: Message[Any] = Message(
        queue_name="batch",
        actor_name="product_copy",
        args=("kiids-kingdom", product, {"force_fresh": True}),
        kwargs={},
        options={},
    )
    broker.enqueue(message)
    first = wait_job(services.status, message.message_id)
    # When the broker delivers the same message again (a worker died before acking it)
    broker.enqueue(message)
    again = wait_job(services.status, message.message_id)
    assert again["status"] == "done" and int(again["attempts"]) >= 2, again
    # Then the model really was called twice, but the ledger counts the job's call once
    assert first["status"] == "done"
    assert gateway.stats()["model_calls"] == 2
    got = totals(services)
    assert got["calls"] == 1
    assert got["cost_usd"] == first["cost_usd"]


def test_a_budget_stops_the_job_that_would_cross_it_and_charges_it_nothing(
    services: Any, worker: Any, gateway: Any
) -> None:
    from adapters.ledger import Ledger, usd_to_nano
    from entrypoints import compose

    broker = compose.process_broker()
    from pipelines.submit import submit_product_copy

    # Given a store whose daily budget is $0.01, and more work than that buys, sent at once
    ledger = Ledger(services.redis)
    ledger.set_budget("budget-test", usd_to_nano("0.01"))
    products = sample_products("stanley1913")[:45]
    jobs = [submit_product_copy(broker, services.status, "budget-test", p) for p in products]
    # When the workers run them concurrently
    infos = [wait_job(services.status, j) for j in jobs]
    # Then the jobs that would cross the budget failed at once, naming store, budget and spend
    failed = [i for i in infos if i["status"] == "failed"]
    done = [i for i in infos if i["status"] == "done"]
    assert failed and done and len(failed) + len(done) == len(jobs)
    for info in failed:
        assert info["attempts"] == 1
        assert "BudgetExceeded" in info["error"] and "store budget-test" in info["error"]
        assert "daily budget of $0.01" in info["error"] and "spent $" in info["error"]
        # and were charged nothing: no call was made for them
        assert ledger.job_spent(info["id"]) == 0
        assert not info.get("output_keys")
    got = totals(services)
    assert got["calls"] == gateway.stats()["model_calls"] == len(done)
    # Concurrent jobs did not jointly overspend, and no hold is left behind
    state = ledger.budget("budget-test", 0)
    assert Decimal(got["cost_usd"]) <= Decimal("0.01")
    # and jobs were refused for what was spent, not for holds of calls in flight: the budget was
    # used up to within one call's worst case (~$0.001 here)
    assert Decimal(got["cost_usd"]) > Decimal("0.0085")
    assert state.spent_nano == usd_to_nano(got["cost_usd"]) and state.reserved_nano == 0


def test_a_job_cap_refuses_the_call_that_would_cross_it(redis_client: Any) -> None:
    from adapters.ledger import Entry, Ledger

    # Given a job that has spent 900 nano-dollars of a 1000 cap
    ledger = Ledger(redis_client)
    hold = ledger.reserve("cap-store", "job-1", 950, daily_budget_nano=10**9, job_cap_nano=1000)
    entry = Entry("job-1:0:a", "cap-store", "2026-11-25", "p", "a", "openai/m", "a@v1", {"cost_nano": 900})
    assert ledger.settle(entry, hold)
    # When its next call may cost up to 200
    with pytest.raises(BudgetExceeded) as refused:
        ledger.reserve("cap-store", "job-1", 200, daily_budget_nano=10**9, job_cap_nano=1000)
    # Then it is refused, naming the job, the cap and the spend; the hold was released
    assert "job job-1 of store cap-store" in str(refused.value)
    assert "cap of $0.000001 per job" in str(refused.value) and "spent $0.0000009" in str(refused.value)
    assert ledger.job_spent("job-1") == 900
    assert ledger.budget("cap-store", 10**9).reserved_nano == 0


def test_a_lapsed_hold_is_given_back(redis_client: Any) -> None:
    from adapters import ledger as ledger_mod

    # Given a hold whose worker died (its lease already over)
    ledger = ledger_mod.Ledger(redis_client)
    hold = ledger.reserve("lapse", "job-9", 500, daily_budget_nano=1000, job_cap_nano=1000)
    redis_client.zadd(ledger_mod.RESERVATIONS + "lapse", {hold.member: 0})
    # When the next call asks for the whole budget
    ledger.reserve("lapse", "job-10", 1000, daily_budget_nano=1000, job_cap_nano=1000)
    # Then it fits: the lapsed hold was purged (and settling it later changes nothing)
    assert ledger.budget("lapse", 1000).reserved_nano == 1000
    ledger.release(hold)
    assert ledger.budget("lapse", 1000).reserved_nano == 1000


def _worst_cases(services: Any, product: dict[str, Any]) -> tuple[int, int]:
    """(exact, byte-bound) worst case in nano-USD of the call product copy makes for `product`."""
    from agents.pricing import price_for
    from agents.product_copy import ProductCopyAgent
    from agents.shopify import parse_product
    from agents.tokens import count_messages, tokens_at_most
    from agents.usage import CallContext, usd_to_nano

    agent = ProductCopyAgent(services.runtime)
    prompt = arun(agent.prompt_for(CallContext(store="bound-store", pipeline="product_copy")))
    meta = prompt.meta
    variables = agent.variables(
        parse_product(product),
        brand_voice=None,
        locale=None,
        model=meta.model,
        token_budget=meta.input_token_budget,
    )
    messages = prompt.render(variables)
    price = price_for(meta.model, services.settings.price_overrides)

    def worst(tokens: int) -> int:
        return usd_to_nano(price.worst_case(tokens, meta.max_tokens))

    return worst(count_messages(messages, meta.model)), worst(tokens_at_most(messages, meta.model))


def test_a_budget_the_byte_bound_overshoots_but_the_exact_worst_case_fits_lets_the_call_through(
    services: Any, gateway: Any
) -> None:
    from adapters.ledger import Ledger, usd
    from pipelines.product_copy import generate_product_copy

    product = sample_products("stanley1913")[12]
    exact, bound = _worst_cases(services, product)
    assert exact < bound
    ledger = Ledger(services.redis)
    # Given a budget just under the exact worst case: refused, naming the exact figure
    ledger.set_budget("bound-store", exact - 1)
    with pytest.raises(BudgetExceeded, match=f"may cost up to \\${usd(exact)} "):
        arun(generate_product_copy(services, "bound-store", product))
    assert gateway.stats()["model_calls"] == 0
    # When the budget lies between the exact worst case and the bound that holds are sized by first
    ledger.set_budget("bound-store", (exact + bound) // 2)
    arun(generate_product_copy(services, "bound-store", product))
    # Then the call went through (counted exactly once the bound did not fit) and no hold is left
    assert gateway.stats()["model_calls"] == 1
    assert ledger.budget("bound-store", 0).reserved_nano == 0
