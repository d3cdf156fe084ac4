"""Prompt references on the command line: AGENT[@VERSION], where VERSION may be a label."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters.errors import InvalidInput

if TYPE_CHECKING:
    from adapters.prompt_labels import PromptLabels
    from agents.prompts import PromptRegistry


def registry() -> PromptRegistry:
    from adapters.settings import get_settings
    from agents.prompts import PromptRegistry
    from agents.schemas import OUTPUT_MODELS

    return PromptRegistry(get_settings().prompts_dir, OUTPUT_MODELS)


def labels_store() -> PromptLabels:
    from adapters.prompt_labels import PromptLabels
    from adapters.settings import get_settings
    from entrypoints.compose import redis_client

    return PromptLabels(redis_client(get_settings()))


def split_ref(ref: str) -> tuple[str, str | None]:
    agent, _, version = ref.partition("@")
    return agent, version or None


def resolve(reg: PromptRegistry, agent: str, name: str | None) -> str:
    """A version, or the version a label points at (Redis first, then the files' own labels)."""
    name = name or "production"
    versions = reg.versions(agent)
    if name in versions:
        return name
    state = labels_store().get(agent, name)
    if state is not None and state.version in versions:
        return state.version
    marked = [v for v in versions if name in reg.get(agent, v).meta.labels]
    if marked:
        return marked[-1]
    if name == "production":
        return reg.default_version(agent)
    raise InvalidInput(
        f"{agent} has no version or label {name!r} (versions: {', '.join(versions)}; "
        f"see `wandstore-agents prompts list`)"
    )
