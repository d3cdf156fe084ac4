"""Pacing and fallback configuration fails early, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.errors import ConfigError
from adapters.settings import load_settings
from agents.prompts import PromptError, PromptRegistry
from agents.schemas import OUTPUT_MODELS

BODY = "[system]\nhi\n[user]\n{{ product }}\n"


def prompt(root: Path, extra: str) -> Path:
    path = root / "x" / "v1.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "---\ndescription: t\nmodel: openai/gpt-4o-mini\noutput: ProductCopy\ninputs: [product]\n"
    path.write_text(head + extra + "---\n" + BODY)
    return path


def test_model_limits_are_read_as_json_and_checked() -> None:
    settings = load_settings(model_limits={"gpt-4o-mini": {"rpm": 500, "tpm": 200000}})
    assert settings.model_limits == {"gpt-4o-mini": {"rpm": 500, "tpm": 200000}}
    assert settings.model_limit_interactive_share == 0.2
    with pytest.raises(ConfigError, match=r"MODEL_LIMITS: .*'gpt-4o-mini' must map to"):
        load_settings(model_limits={"gpt-4o-mini": {"rps": 5}})
    with pytest.raises(ConfigError, match=r"MODEL_LIMITS: .*positive integers"):
        load_settings(model_limits={"gpt-4o-mini": {"rpm": 0}})
    with pytest.raises(ConfigError, match="MODEL_LIMIT_INTERACTIVE_SHARE"):
        load_settings(model_limit_interactive_share=1.0)


def test_front_matter_names_limits_and_a_fallback_on_the_other_provider(tmp_path: Path) -> None:
    prompt(tmp_path, "rpm: 500\ntpm: 200000\nfallback_model: anthropic/claude-haiku-4-5\n")
    meta = PromptRegistry(tmp_path, OUTPUT_MODELS).get("x").meta
    assert (meta.rpm, meta.tpm, meta.fallback_model) == (500, 200000, "anthropic/claude-haiku-4-5")


def test_a_fallback_on_the_same_provider_is_refused(tmp_path: Path) -> None:
    path = prompt(tmp_path, "fallback_model: openai/gpt-4.1-mini\n")
    with pytest.raises(PromptError, match=f"{path}.*must be on another provider"):
        PromptRegistry(tmp_path, OUTPUT_MODELS)
