"""Every agent output model, by the name prompt files use in `output:`."""

from __future__ import annotations

from pydantic import BaseModel

from agents.schemas.personalization import Personalization
from agents.schemas.product_copy import ProductCopy
from agents.schemas.theme import BrandStrategy, Critique, DesignTokens, LayoutPlan, SectionCopy

OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "ProductCopy": ProductCopy,
    "BrandStrategy": BrandStrategy,
    "DesignTokens": DesignTokens,
    "LayoutPlan": LayoutPlan,
    "SectionCopy": SectionCopy,
    "Critique": Critique,
    "Personalization": Personalization,
}

__all__ = [
    "OUTPUT_MODELS",
    "BrandStrategy",
    "Critique",
    "DesignTokens",
    "LayoutPlan",
    "Personalization",
    "ProductCopy",
    "SectionCopy",
]
