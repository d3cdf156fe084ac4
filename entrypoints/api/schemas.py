"""Request and response bodies (they are also the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, PlainValidator, RootModel, model_validator
from pydantic.json_schema import SkipJsonSchema

from adapters.pipeline_names import PERSONALIZATION, PRODUCT_COPY, THEME_BUILD
from agents.theme.inputs import ThemeBrief
from agents.usage import Served
from pipelines.cohorts import ShopperContext
from pipelines.product_copy import CopyOptions

PIPELINES = (PRODUCT_COPY, PERSONALIZATION, THEME_BUILD)
Pipeline = Literal["product_copy", "personalization", "theme_build"]
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
CALLBACK = "POSTed the finished result, signed (X-Wandstore-Signature; see the `webhooks` section)"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object")
    return value


def _object_or_null(value: Any) -> Any:
    return None if value is None else _object(value)


def _checked_later(schema: Any, *, nullable: bool = False) -> Any:
    """A JSON object kept as sent, declared with `schema`: the pipeline's own parser checks it.

    (`input.product` is enqueued as the storefront sent it; the pipeline checks the context and
    the brief and names the field it refuses, e.g. `input.context`.)
    """
    return PlainValidator(_object_or_null if nullable else _object, json_schema_input_type=schema)


class _NoOptions(_Strict):
    """This pipeline takes no options."""


class ProductCopyInput(_Strict):
    product: Annotated[dict[str, Any], _checked_later(dict[str, Any])] = Field(
        description="One Shopify product as Shopify serves it (Admin REST or a storefront's "
        "products.json): `id` a number or a string, `tags` a list or a comma string"
    )


class PersonalizationInput(_Strict):
    shopper_id: str | int = Field(
        description="The shopper's id, ^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$ (a number is read as its digits)"
    )
    context: Annotated[dict[str, Any] | None, _checked_later(ShopperContext | None, nullable=True)] = None


class ThemeBuildInput(_Strict):
    brief: Annotated[dict[str, Any], _checked_later(ThemeBrief)]
    products: list[Any] | dict[str, Any] | None = Field(
        default=None,
        description='A products export (a list, or `{"products": [...]}`): replaces the store\'s '
        "catalog snapshot before the build (needs scope `catalog`)",
    )


class ProductCopyRequest(_Strict):
    """Copy for one product, on `batch`."""

    pipeline: Literal["product_copy"]
    input: ProductCopyInput
    options: Annotated[dict[str, Any], _checked_later(CopyOptions)] = Field(default_factory=dict)
    callback_url: HttpUrl | None = Field(default=None, description=CALLBACK)


class PersonalizationRequest(_Strict):
    """One shopper's storefront, on `interactive`; `input.context.callback_url` is called back."""

    pipeline: Literal["personalization"]
    input: PersonalizationInput
    options: Annotated[dict[str, Any], _checked_later(_NoOptions)] = Field(default_factory=dict)
    callback_url: HttpUrl | None = Field(default=None, description=CALLBACK)


class ThemeBuildRequest(_Strict):
    """A theme from a brief, on `batch`; needs scope `publish` (it makes the build live)."""

    pipeline: Literal["theme_build"]
    input: ThemeBuildInput
    options: Annotated[dict[str, Any], _checked_later(_NoOptions)] = Field(default_factory=dict)
    callback_url: HttpUrl | None = Field(default=None, description=CALLBACK)


AnyGeneration = ProductCopyRequest | PersonalizationRequest | ThemeBuildRequest


class GenerationRequest(RootModel[Annotated[AnyGeneration, Field(discriminator="pipeline")]]):
    """Ask for one generation; `pipeline` says which, and the shape of `input` and `options`."""

    @staticmethod
    def untag(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Validation errors as if the request were one model: `input.x`, not `product_copy.input.x`."""
        out = []
        for err in errors:
            loc = tuple(err.get("loc", ()))
            kind = err.get("type")
            if kind == "union_tag_invalid":
                expected = "'product_copy', 'personalization' or 'theme_build'"
                err = {
                    **err,
                    "type": "literal_error",
                    "loc": ("pipeline",),
                    "msg": f"Input should be {expected}",
                }
            elif kind == "union_tag_not_found":
                err = {**err, "type": "missing", "loc": ("pipeline",), "msg": "Field required"}
            elif loc and loc[0] in PIPELINES:
                err = {**err, "loc": loc[1:]}
            out.append(err)
        return out

    @property
    def body(self) -> AnyGeneration:
        return self.root


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
    pipeline: str | None = Field(
        default=None, description="product_copy, personalization or theme_build; catalog_sync for a sync"
    )
    status: str = Field(
        description="queued, running, retrying, done, failed, or lost (its message vanished from Redis)"
    )
    progress: str | None = None
    attempts: int = 0
    output_keys: list[str] = Field(default_factory=list)
    output_urls: list[str] = Field(default_factory=list, description="GET these for the published JSON")
    cost_usd: str | None = None
    served: Served | None = Field(
        default=None, description="fresh, gateway_cache, result_cache, or fallback (a personalization's)"
    )
    draft_id: str | None = Field(
        default=None, description="The draft this generation wrote (GET /v1/stores/{store}/drafts/{id})"
    )
    live: bool | None = Field(
        default=None, description="Whether the draft went live (false: it waits for review)"
    )
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


class ThemeShare(BaseModel):
    """A link that opens a build's preview in a browser, no API token needed, until `expires_at`."""

    url: str = Field(description="Signed link to the preview (store, build and expiry are signed)")
    expires_at: str = Field(description="When the link stops working (UTC, ISO 8601)")
    build_id: str
    store: str


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


# --- errors -------------------------------------------------------------------------------


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # absent, never null: the schema says so


class ErrorDetail(BaseModel):
    """One broken rule: which field (and where), the rule, and what is wrong."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: str = Field(description="The field, dotted for nested ones (`input.product.title`), or a header")
    in_: Literal["body", "path", "query", "header", "cookie"] | SkipJsonSchema[None] = Field(
        default=None, alias="in", description="Where the field is", json_schema_extra=_no_default
    )
    rule: str = Field(description="The rule it broke, e.g. `missing`, `extra_forbidden`, `scope`")
    message: str
    scope: str | SkipJsonSchema[None] = Field(
        default=None, description="The scope a 403 asks for", json_schema_extra=_no_default
    )


class ErrorBody(_Strict):
    code: str = Field(description="Stable, e.g. `invalid_request`, `forbidden`, `rate_limited`")
    message: str = Field(description="What is wrong and what to do, for a person")
    details: list[ErrorDetail] | SkipJsonSchema[None] = Field(
        default=None,
        description="Present when fields are named (422, a 403 for a scope)",
        json_schema_extra=_no_default,
    )


class ErrorResponse(_Strict):
    """Every refusal: `{"error": {"code", "message", "details"?}}`."""

    error: ErrorBody


# --- published outputs and webhooks ---------------------------------------------------------


class Tokens(BaseModel):
    prompt: int
    cached_prompt: int
    completion: int


class OutputMeta(BaseModel):
    """`meta` of every published document; pipelines add their own fields."""

    model_config = ConfigDict(extra="allow")

    pipeline: str
    prompt: str
    prompt_version: str
    prompt_ref: str = Field(description="`product_copy@v1`; a theme's agents joined with `+`")
    model: str | None = Field(description="None when nothing was generated (a default ordering)")
    generated_at: str
    input_hash: str
    cost_usd: str
    served: Served
    tokens: Tokens
    calls: int
    job_id: str
    store: str | None = None


class ProductCopyMeta(OutputMeta):
    pipeline: Literal["product_copy"]
    product_id: str | None = None
    locale: str | None = None


class PersonalizationMeta(OutputMeta):
    pipeline: Literal["personalization", "personalize"] = Field(
        description="`personalize` only in documents written before the names were one"
    )
    shopper_id: str | None = None
    cohort: str | None = None
    fallback: Literal["last_good", "default"] | None = Field(
        default=None, description="When `served` is `fallback`: the cohort's last good result or the default"
    )
    fallback_reason: str | None = None
    deadline_ms: int | None = None
    elapsed_ms: int | None = None


class ThemeMeta(OutputMeta):
    pipeline: Literal["theme_build"]
    build_id: str | None = None
    prompts: dict[str, str] = Field(default_factory=dict)
    models: dict[str, str] = Field(default_factory=dict)
    cost_by_agent: dict[str, str] = Field(default_factory=dict)
    calls_by_agent: dict[str, int] = Field(default_factory=dict)


class ImageAltOut(BaseModel):
    image_id: str
    alt: str


class ProductCopyDocument(BaseModel):
    """`stores/{store}/products/{product_id}/copy.json`."""

    model_config = ConfigDict(extra="allow")

    title: str
    description_html: str = Field(
        description="Sanitized HTML: p, br, ul, ol, li, strong, em, b, i, h3, h4, blockquote"
    )
    bullets: list[str]
    seo_title: str
    meta_description: str
    image_alts: list[ImageAltOut] = Field(default_factory=list)
    meta: ProductCopyMeta


class PersonalizationDocument(BaseModel):
    """`stores/{store}/shoppers/{shopper_id}/personalization.json`."""

    model_config = ConfigDict(extra="allow")

    headline: str
    subheadline: str
    ranked_product_ids: list[str]
    banner_text: str
    reason_codes: list[str] = Field(default_factory=list)
    expires_at: str
    meta: PersonalizationMeta


class ThemeDocument(BaseModel):
    """`themes/{store}/builds/{build_id}/theme.json` (pipelines/theme_document.py)."""

    model_config = ConfigDict(extra="allow")

    schema_version: int | str
    store: str
    build_id: str
    locale: str | None = Field(default=None, description="The page's language: the brief's, else the store's")
    currency: str | None = Field(default=None, description="ISO 4217 code of the prices ('' if unknown)")
    brief: dict[str, Any]
    brand: dict[str, Any]
    tokens: dict[str, Any]
    sections: list[dict[str, Any]]
    products: list[dict[str, Any]]
    checks: dict[str, Any]
    review: dict[str, Any]
    meta: ThemeMeta


class OtherDocument(RootModel[dict[str, Any]]):
    """Any other JSON under the store's prefixes: `themes/{store}/current.json`, the catalog snapshot."""


# What `GET .../outputs/{key}` answers as JSON: a pipeline's document, told apart by
# `meta.pipeline` (OpenAPI's discriminator takes a top-level property only), or another file.
OutputDocument = ProductCopyDocument | PersonalizationDocument | ThemeDocument | OtherDocument


class _Finished(BaseModel):
    event: Literal["generation.finished"]
    id: str = Field(description="The job id (deduplicate on it)")
    store: str
    status: Literal["done", "failed"]
    output_keys: list[str]
    cost_usd: str | None = None
    served: Served | None = None
    error: str | None = Field(default=None, description="`Type: message` when the job failed")
    finished_at: float | None = Field(default=None, description="Unix seconds")


class ProductCopyFinished(_Finished):
    pipeline: Literal["product_copy"]
    output: ProductCopyDocument | None = Field(default=None, description="The published copy, when done")


class PersonalizationFinished(_Finished):
    pipeline: Literal["personalization"]
    shopper_id: str
    output: PersonalizationDocument | None = None


class ThemeBuildFinished(_Finished):
    pipeline: Literal["theme_build"]
    output: None = Field(default=None, description="A build writes several files: see `output_keys`")


Finished = ProductCopyFinished | PersonalizationFinished | ThemeBuildFinished


class GenerationFinished(RootModel[Annotated[Finished, Field(discriminator="pipeline")]]):
    """The body of a webhook or callback, by `pipeline`."""
