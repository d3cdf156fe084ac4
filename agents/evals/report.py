"""Eval outcomes summed up per version: pass rates per assertion, tokens, cost, latency, failures."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from agents.evals.runner import CaseOutcome
from agents.usage import nano_to_usd


@dataclass(frozen=True)
class Failure:
    version: str
    case: str
    assertion: str
    reason: str


@dataclass
class VersionSummary:
    """One version over every case."""

    version: str
    cases: int = 0
    passed: int = 0
    # assertion type -> [cases where every assertion of that type passed, cases that had one]
    assertions: dict[str, list[int]] = field(default_factory=dict)
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nano: int = 0
    latency_p50_ms: float = 0.0
    calls: int = 0
    cache_hits: int = 0
    repaired: int = 0
    invalid: int = 0
    errors: int = 0

    @property
    def ok(self) -> bool:
        return self.passed == self.cases

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "ok": self.ok,
            "cases": self.cases,
            "passed": self.passed,
            "assertions": {k: {"passed": p, "total": t} for k, (p, t) in sorted(self.assertions.items())},
            "tokens": {
                "prompt": self.prompt_tokens,
                "cached_prompt": self.cached_prompt_tokens,
                "completion": self.completion_tokens,
            },
            "cost_usd": format(nano_to_usd(self.cost_nano), "f"),
            "latency_p50_ms": round(self.latency_p50_ms, 1),
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "repaired": self.repaired,
            "invalid": self.invalid,
            "errors": self.errors,
        }


@dataclass
class EvalReport:
    agent: str
    cases: int
    versions: list[VersionSummary]
    failures: list[Failure]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.versions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "cases": self.cases,
            "ok": self.ok,
            "versions": {v.version: v.as_dict() for v in self.versions},
            "failures": [f.__dict__ for f in self.failures],
        }


def summarize(agent: str, versions: list[str], outcomes: list[CaseOutcome]) -> EvalReport:
    """Per-version totals; a case passes when all its assertions do."""
    summaries = {v: VersionSummary(v) for v in versions}
    latencies: dict[str, list[float]] = {v: [] for v in versions}
    failures: list[Failure] = []
    cases: set[str] = set()
    for out in outcomes:
        s = summaries[out.version]
        cases.add(out.case.id)
        s.cases += 1
        s.passed += out.passed
        by_type: dict[str, bool] = {}
        for kind, reason in out.results:
            by_type[kind] = by_type.get(kind, True) and reason is None
            if reason is not None:
                failures.append(Failure(out.version, out.case.id, kind, reason))
        for kind, good in by_type.items():
            tally = s.assertions.setdefault(kind, [0, 0])
            tally[0] += good
            tally[1] += 1
        usage = out.usage
        s.prompt_tokens += usage.prompt_tokens
        s.cached_prompt_tokens += usage.cached_prompt_tokens
        s.completion_tokens += usage.completion_tokens
        s.cost_nano += out.cost_nano
        s.calls += len(out.records)
        s.cache_hits += out.cache_hits
        s.repaired += out.repaired
        s.invalid += out.invalid
        s.errors += out.output is None and not out.invalid
        if out.records:
            latencies[out.version].append(out.latency_ms)
    for version, values in latencies.items():
        summaries[version].latency_p50_ms = statistics.median(values) if values else 0.0
    return EvalReport(agent, len(cases), list(summaries.values()), failures)
