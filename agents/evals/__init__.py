"""Prompt evals: cases with assertions, run on prompt versions through the gateway, summarized."""

from agents.evals.assertions import Assertion, check_all
from agents.evals.cases import Case, load_cases
from agents.evals.report import EvalReport, VersionSummary, summarize
from agents.evals.runner import CaseOutcome, run_eval

__all__ = [
    "Assertion",
    "Case",
    "CaseOutcome",
    "EvalReport",
    "VersionSummary",
    "check_all",
    "load_cases",
    "run_eval",
    "summarize",
]
