"""Request and response bodies (they are also the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

PIPELINES = ("product_copy", "personalization", "theme_build")
Pipeline = Literal["product_copy", "personalization", "theme_build"]
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationRequest(_Strict):
    """Ask for one generation. `input` by pipeline:

    - `product_copy`: `{"product": <Shopify product JSON>}`; options `brand_voice`, `force_fresh`, `locale`
    - `personalization`: `{"shopper_id": "...", "context": {...}}`
    - `theme_build`: `{"brief": {"description": "...", "audience"?, "tone"?, "palette_hint"?}}`
    """

    pipeline: Pipeline
    input: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    callback_url: HttpUrl | None = Field(
        default=None, description="POSTed the finished result, signed (X-Wandstore-Signature)"
    )


class Accepted(BaseModel):
    id: str
    status: str = "queued"
    status_url: str


class Delivery(BaseModel):
    attempt: int
    at: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: float | None = None


class JobError(BaseModel):
    type: str
    message: str
    what_to_do: str


class GenerationStatus(BaseModel):
    id: str
    store: str | None = None
    pipeline: str | None = None
    status: str = Field(
        description="queued, running, retrying, done, failed, or lost (its message vanished from Redis)"
    )
    progress: str | None = None
    attempts: int = 0
    output_keys: list[str] = Field(default_factory=list)
    output_urls: list[str] = Field(default_factory=list, description="GET these for the published JSON")
    cost_usd: str | None = None
    served: str | None = Field(default=None, description="fresh, gateway_cache or result_cache")
    error: JobError | None = None
    batch: str | None = None
    callback_url: str | None = None
    webhook: str | None = Field(default=None, description="delivered, retrying or failed")
    deliveries: list[Delivery] = Field(default_factory=list)
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None


class CatalogCopyRequest(_Strict):
    """Products inline, or the object-store key of a products export (`{"products": [...]}` or a list)."""

    products: list[Any] | None = Field(default=None, min_length=1)
    export_key: str | None = Field(default=None, min_length=1, max_length=1024)
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> CatalogCopyRequest:
        if (self.products is None) == (self.export_key is None):
            raise ValueError("give exactly one of 'products' and 'export_key'")
        return self


class BatchFailure(BaseModel):
    index: int | None = Field(default=None, description="position in the submitted products")
    product_id: str | None = None
    job_id: str | None = None
    reason: str


class BatchStatus(BaseModel):
    id: str
    store: str
    pipeline: str
    state: str = Field(description="submitting, running or finished")
    total: int
    done: int
    failed: int
    pending: int
    failures: list[BatchFailure]
    created_at: str
    status_url: str


class Check(BaseModel):
    ok: bool
    detail: str
    latency_ms: float | None = None


class PublicHealth(BaseModel):
    """What `/healthz` tells anyone."""

    status: Literal["up", "down"]


class Health(BaseModel):
    """What `/healthz` tells the ops token."""

    status: Literal["up", "down"]
    ok: bool
    version: str
    checked_at: str = Field(description="When the background check this reports ran (UTC)")
    checks: dict[str, Check]


class ThemeBuild(BaseModel):
    build_id: str
    generated_at: str | None = None
    current: bool = False
    sections: int = 0
    cost_usd: str | None = None
    approved: bool | None = None
    brief: str = ""
    preview: str = Field(description="object key of the build's preview.html")
    preview_url: str


class ThemeBuilds(BaseModel):
    store: str
    builds: list[ThemeBuild]


class ThemePointer(BaseModel):
    """The new `themes/{store}/current.json`."""

    store: str
    build_id: str
    theme: str
    prefix: str
    activated_at: str
    reason: str
    previous_build_id: str | None = None


class CostReport(BaseModel):
    """Rows grouped by `by`, then totals; money is a decimal string of USD."""

    store: str
    since: str | None
    until: str | None
    by: list[str]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
