"""The eval runner retries a case's call by the project's retry policy, then reports what failed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from adapters.errors import InvalidOutput, RateLimited
from agents.evals import runner
from agents.evals.cases import Case


class FakeAgent:
    """Fails with each error in turn, then answers."""

    name = "product_copy"

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls = list(errors), 0

    async def run(self, ctx: Any, variables: Any, *, version: str) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return SimpleNamespace(output=SimpleNamespace(model_dump=lambda mode: {"title": "ok"}))


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "RETRY_BASE_S", 0.001)
    monkeypatch.setattr(runner, "variables_for", lambda agent, data, prompt, options: {"x": data})


def run_case(agent: FakeAgent) -> runner.CaseOutcome:
    case = Case.model_validate({"id": "c1", "input": 1, "assert": [{"type": "schema_valid"}]})
    prompts = SimpleNamespace(get=lambda agent, version: None)
    return asyncio.run(runner._run_case(agent, prompts, "v1", case, "job"))  # type: ignore[arg-type]


def test_a_rate_limited_call_is_retried_until_it_answers() -> None:
    agent = FakeAgent(RateLimited("slow down"), RateLimited("slow down"))
    outcome = run_case(agent)
    assert (outcome.output, outcome.error, agent.calls) == ({"title": "ok"}, None, 3)


def test_a_call_still_failing_after_the_last_attempt_is_reported_as_failed() -> None:
    agent = FakeAgent(*[RateLimited(f"slow down {n}") for n in range(runner.MAX_ATTEMPTS)])
    outcome = run_case(agent)
    assert (outcome.output, outcome.error, outcome.invalid) == (None, "slow down 3", False)
    assert agent.calls == runner.MAX_ATTEMPTS


def test_an_invalid_output_is_not_retried() -> None:
    agent = FakeAgent(InvalidOutput("not json"))
    outcome = run_case(agent)
    assert (outcome.error, outcome.invalid, agent.calls) == ("not json", True, 1)
