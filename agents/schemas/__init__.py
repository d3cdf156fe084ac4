"""Every agent output model, by the name prompt files use in `output:`."""

from __future__ import annotations

from pydantic import BaseModel

from agents.schemas.product_copy import ProductCopy

OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    "ProductCopy": ProductCopy,
}

__all__ = ["OUTPUT_MODELS", "ProductCopy"]
