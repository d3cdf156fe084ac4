"""An agent by its name, and its prompt variables from a raw input (an eval case, `render --input`).

Agents are found by their `name` among the `Agent` subclasses in the `agents` package, so
a new agent needs no registration here. Its raw input is the prompt's variables dict,
unless the agent builds variables from something richer: product copy takes a Shopify
product, exactly as the pipeline does. Such agents register an input builder below.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, cast

from adapters.errors import InvalidInput
from agents.base import Agent
from agents.prompts import Prompt

InputBuilder = Callable[[Agent[Any], Any, Prompt, dict[str, Any]], dict[str, Any]]
_BUILDERS: dict[str, InputBuilder] = {}


def input_builder(agent: str) -> Callable[[InputBuilder], InputBuilder]:
    """Register how `agent` turns a raw input into prompt variables."""

    def register(fn: InputBuilder) -> InputBuilder:
        _BUILDERS[agent] = fn
        return fn

    return register


def _import_agent_modules() -> None:
    import agents

    for info in pkgutil.walk_packages(agents.__path__, "agents."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            importlib.import_module(info.name)


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    direct: list[type] = cls.__subclasses__()
    for sub in direct:
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def agent_class(name: str) -> type[Agent[Any]]:
    """The `Agent` subclass named `name`; a plain agent (schema validation only) when none is coded yet."""
    _import_agent_modules()
    for cls in _subclasses(Agent):
        if getattr(cls, "name", None) == name:
            return cast(type[Agent[Any]], cls)
    return cast(type[Agent[Any]], type(f"PromptOnly_{name}", (Agent,), {"name": name}))


def variables_for(agent: Agent[Any], data: Any, prompt: Prompt, options: dict[str, Any]) -> dict[str, Any]:
    """The exact variables `agent` would render `prompt` with for this raw input."""
    builder = _BUILDERS.get(agent.name)
    if builder is not None:
        return builder(agent, data, prompt, options)
    if not isinstance(data, dict):
        raise InvalidInput(
            f"input for {agent.name} must be a JSON object of the prompt's variables "
            f"({', '.join(prompt.meta.inputs)})"
        )
    missing = [name for name in prompt.meta.inputs if name not in data]
    if missing:
        raise InvalidInput(f"input for {prompt.ref} lacks variable(s) {', '.join(missing)}")
    return dict(data)


@input_builder("product_copy")
def _product_copy(agent: Agent[Any], data: Any, prompt: Prompt, options: dict[str, Any]) -> dict[str, Any]:
    from agents.product_copy import ProductCopyAgent
    from agents.shopify import load_products, parse_product

    products = load_products(data)
    if len(products) != 1:
        raise InvalidInput(
            f"product_copy takes one Shopify product; this input has {len(products)} "
            "(pick one, e.g. with `render --product ID`)"
        )
    copywriter = cast(ProductCopyAgent, agent)
    return copywriter.variables(
        parse_product(products[0]),
        brand_voice=options.get("brand_voice"),
        locale=options.get("locale"),
        model=prompt.meta.model,
        token_budget=prompt.meta.input_token_budget,
    )
