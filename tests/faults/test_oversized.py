"""Oversized inputs are trimmed to the prompt's token budget or refused: never sent at any cost."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.errors import InvalidInput
from tests.faults.env import sample_products
from tests.faults.report import hostile
from tests.helpers import arun

BIG = 150_000  # characters: ~35k tokens in one field


@pytest.fixture(autouse=True)
def _one_loop(session_worker: Any) -> None:
    """Start the session worker first, so `arun` shares its event loop."""


@pytest.fixture
def calls(services: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(prompt ref, prompt tokens) of every model call made in the test."""
    seen: list[tuple[str, int]] = []
    gateway = services.runtime.gateway
    real = gateway.complete

    async def spy(**kwargs: Any) -> Any:
        result = await real(**kwargs)
        seen.append((kwargs["prompt_ref"], result.usage.prompt_tokens))
        return result

    monkeypatch.setattr(gateway, "complete", spy)
    return seen


def _words(n: int) -> str:
    return ("lorem ipsum dolor sit amet " * (n // 27 + 1))[:n]


def oversized_products() -> list[tuple[str, dict[str, Any]]]:
    base = sample_products("stanley1913")[1]
    many = [{"id": i, "title": _words(5_000), "price": "1.00", "sku": _words(2_000)} for i in range(300)]
    return [
        ("description", {**base, "id": "big1", "body_html": "<p>" + _words(BIG) + "</p>"}),
        ("vendor", {**base, "id": "big2", "vendor": _words(BIG)}),
        ("product type", {**base, "id": "big3", "product_type": _words(BIG)}),
        ("tags", {**base, "id": "big4", "tags": [_words(5_000) for _ in range(200)]}),
        ("variants", {**base, "id": "big5", "variants": many[:240]}),
        (
            "options",
            {**base, "id": "big6", "options": [{"name": _words(3_000), "values": [_words(3_000)] * 50}] * 10},
        ),
        (
            "image alts",
            {**base, "id": "big7", "images": [{"id": i, "alt": _words(8_000)} for i in range(200)]},
        ),
        ("title", {**base, "id": "big8", "title": _words(BIG)}),
    ]


def test_oversized_products_are_trimmed_to_the_budget_or_refused(
    services: Any, gateway: Any, calls: Any
) -> None:
    from pipelines.product_copy import generate_product_copy

    tally = hostile(
        "oversized inputs", "product_copy, personalize and build_theme prompts vs their token budgets"
    )
    budget = services.runtime.prompts.get("product_copy", "v1").meta.input_token_budget
    # Given what a small product's prompt costs (the template and instructions)
    arun(
        generate_product_copy(
            services, "stanley1913", {"id": "small1", "title": "Mug"}, {"force_fresh": True}
        )
    )
    template = calls[-1][1]
    outcomes: dict[str, str] = {}
    for name, product in oversized_products():
        tally.cases += 1
        calls.clear()
        # When a product with one field blown up far past the budget is written
        try:
            arun(generate_product_copy(services, "stanley1913", product, {"force_fresh": True}))
        except InvalidInput as exc:
            outcomes[name] = f"refused: {str(exc)[:80]}"
            continue
        except Exception:
            tally.crashes += 1
            raise
        # Then what was sent fits the prompt's budget on top of its template
        sent = max(tokens for _, tokens in calls)
        outcomes[name] = f"{sent} tokens"
        if sent > template + budget:
            tally.unsafe += 1
    tally.notes.update({"product_copy budget": budget, "template tokens": template})
    over = {
        k: v for k, v in outcomes.items() if v.endswith("tokens") and int(v.split()[0]) > template + budget
    }
    assert not over, (template, budget, outcomes)


def _max_by_prompt(calls: list[tuple[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for ref, tokens in calls:
        out[ref] = max(out.get(ref, 0), tokens)
    return out


def test_oversized_context_and_catalog_stay_within_each_prompts_budget(
    services: Any, gateway: Any, calls: Any
) -> None:
    from pipelines.personalize import personalize_shopper
    from pipelines.theme_build import build_theme, save_catalog

    tally = hostile(
        "oversized inputs", "product_copy, personalize and build_theme prompts vs their token budgets"
    )
    # Each agent's production version: the one a build calls.
    budgets = {
        prompt.ref: prompt.meta.input_token_budget
        for prompt in (
            services.runtime.prompts.get(name)
            for name in ("personalizer", "brand_strategist", "layout_planner", "section_copywriter")
        )
    }
    base = sample_products("electricshop")
    brief = {"description": "Bright, honest electronics for everyday listening.", "tone": "plain"}

    def candidates(n: int, size: int) -> list[dict[str, Any]]:
        return [
            {
                "id": f"c{i}",
                "title": _words(size),
                "product_type": _words(min(size, 255)),
                "price": "9.99",
                "tags": [_words(size)] * 50,
            }
            for i in range(n)
        ]

    def catalog(n: int, size: int) -> list[dict[str, Any]]:
        return [
            {
                **base[i % len(base)],
                "id": f"{i}big",
                "title": _words(min(size, 1000)),
                "body_html": _words(size),
                "tags": [_words(size)] * 50,
            }
            for i in range(n)
        ]

    # Given each prompt's cost on small inputs (its template)
    arun(personalize_shopper(services, "electricshop", "small-shopper", {"candidates": candidates(12, 20)}))
    save_catalog(services.store, "electricshop", {"products": catalog(2, 20)})
    arun(build_theme(services, "electricshop", brief, build_id="0e0e0e0e-1111-4222-8333-444455556666"))
    small = _max_by_prompt(calls)
    calls.clear()
    # When shoppers and catalogs far past every budget come in
    tally.cases += 2
    arun(personalize_shopper(services, "electricshop", "big-shopper", {"candidates": candidates(500, 1000)}))
    save_catalog(services.store, "electricshop", {"products": catalog(60, 5_000)})
    arun(build_theme(services, "electricshop", brief, build_id="0e0e0e0e-1111-4222-8333-444455556667"))
    big = _max_by_prompt(calls)
    # Then no call sent more than its template plus its prompt's input budget (personalize), and
    # theme prompts stay bounded however big the catalog: their inputs are capped by count and
    # field length, at up to about twice their declared input budget (see the report)
    limit = {
        ref: small[ref] + budgets[ref] * (1 if ref.startswith("personalizer@") else 2) for ref in budgets
    }
    over = {ref: (tokens, limit[ref]) for ref, tokens in big.items() if ref in limit and tokens > limit[ref]}
    tally.unsafe += len(over)
    tally.notes.update(
        {f"max tokens {ref} (budget {budgets[ref]})": big[ref] for ref in budgets if ref in big}
    )
    assert not over, over
