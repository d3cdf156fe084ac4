"""Output of the personalizer: what a cohort of shoppers is greeted with and shown first."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ProductId = Annotated[str, Field(min_length=1, max_length=128)]
ReasonCode = Annotated[str, Field(min_length=1, max_length=40)]

# Fewer candidates than this and there is nothing to choose: the default ordering serves.
MIN_RANKED = 3
MAX_RANKED = 24


class Personalization(BaseModel):
    """A personalized storefront for one cohort (per-shopper touches are applied after)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    headline: str = Field(min_length=1, max_length=80, description="greeting, plain text")
    subheadline: str = Field(min_length=1, max_length=160, description="one supporting line, plain text")
    ranked_product_ids: list[ProductId] = Field(
        min_length=MIN_RANKED,
        max_length=MAX_RANKED,
        description="ids of candidate products to feature, best first; only ids from the candidates",
    )
    banner_text: str = Field(min_length=1, max_length=120, description="banner line, plain text")
    reason_codes: list[ReasonCode] = Field(
        default_factory=list, max_length=5, description="short snake_case codes saying why"
    )
