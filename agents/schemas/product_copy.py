"""Output of the product copywriter."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Bullet = Annotated[str, Field(min_length=1, max_length=160)]


class ImageAlt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image_id: str = Field(description="the id of the input image this alt text describes")
    alt: str = Field(min_length=1, max_length=125, description="alt text for the image")


class ProductCopy(BaseModel):
    """Storefront copy for one product."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=70)
    description_html: str = Field(min_length=1, max_length=5000)
    bullets: list[Bullet] = Field(min_length=3, max_length=6)
    seo_title: str = Field(min_length=1, max_length=60)
    meta_description: str = Field(min_length=1, max_length=160)
    image_alts: list[ImageAlt] = Field(default_factory=list, max_length=20)
