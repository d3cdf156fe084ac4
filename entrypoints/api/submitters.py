"""One submitter per pipeline: check the request's `input` and `options`, then enqueue.

A pipeline not in `SUBMITTERS` is not deployed in this build (501), and nothing is enqueued.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.egress import check_callback_url
from adapters.errors import InvalidInput
from entrypoints.api.context import ApiContext
from entrypoints.api.errors import invalid_field
from entrypoints.api.schemas import (
    PersonalizationRequest,
    ProductCopyRequest,
    ThemeBuildRequest,
)
from pipelines.submit import submit_product_copy

# The request's fields (which `input` fields exist, which are required) are checked when it
# is parsed (entrypoints/api/schemas.py); the pipelines check what is inside them.
Submitter = Callable[[ApiContext, str, Any, dict[str, Any]], str]


def _field_of(exc: InvalidInput, default: str) -> str:
    """The most precise field a validation message names: `options`, or `input.product.<field>`."""
    text = str(exc)
    if text.startswith("invalid options"):
        return "options"
    head, sep, rest = text.partition("invalid product: ")
    if sep and not head:
        inner = rest.split(":", 1)[0]
        if inner and " " not in inner:
            return f"{default}.{inner}"
    return default


def product_copy(ctx: ApiContext, store: str, body: ProductCopyRequest, extra: dict[str, Any]) -> str:
    try:
        return submit_product_copy(
            ctx.broker, ctx.status, store, body.input.product, body.options, extra=extra
        )
    except InvalidInput as exc:
        field = _field_of(exc, "input.product")
        raise invalid_field(field, str(exc), "invalid") from None


def theme_build(ctx: ApiContext, store: str, body: ThemeBuildRequest, extra: dict[str, Any]) -> str:
    """`input.brief`; `input.products` (a products export or list) replaces the catalog snapshot first."""
    from agents.theme.inputs import parse_brief
    from pipelines.submit import submit_theme_build
    from pipelines.theme_build import save_catalog

    if body.options:
        raise invalid_field("options", "theme_build takes no options", "extra_forbidden")
    try:
        parse_brief(body.input.brief)  # before the snapshot is replaced: a bad brief changes nothing
    except InvalidInput as exc:
        raise invalid_field("input.brief", str(exc)) from None
    if body.input.products is not None:
        try:
            save_catalog(ctx.store, store, {"products": body.input.products})
        except InvalidInput as exc:
            raise invalid_field("input.products", str(exc)) from None
    try:
        return submit_theme_build(
            ctx.broker, ctx.status, store, body.input.brief, objects=ctx.store, extra=extra
        )
    except InvalidInput as exc:
        if "catalog snapshot" in str(exc) or "holds no valid products" in str(exc):
            raise invalid_field("input.products", str(exc), "catalog_snapshot") from None
        raise invalid_field("input.brief", str(exc)) from None


def personalization(ctx: ApiContext, store: str, body: PersonalizationRequest, extra: dict[str, Any]) -> str:
    """`input.shopper_id` and `input.context`; a `callback_url` is delivered by the interactive worker."""
    from pipelines.submit import submit_personalize

    if body.options:
        raise invalid_field(
            "options", "personalization takes no options (see input.context)", "extra_forbidden"
        )
    context = body.input.context
    callback = context.get("callback_url") if isinstance(context, dict) else None
    if isinstance(callback, str) and callback:
        try:
            check_callback_url(callback, allow_private=ctx.settings.webhook_allow_private_hosts)
        except InvalidInput as exc:
            raise invalid_field("input.context.callback_url", str(exc), "public_address") from None
    try:
        return submit_personalize(ctx.broker, ctx.status, store, body.input.shopper_id, context, extra=extra)
    except InvalidInput as exc:
        field = "input.shopper_id" if str(exc).startswith("shopper id") else "input.context"
        raise invalid_field(field, str(exc)) from None


SUBMITTERS: dict[str, Submitter] = {  # by `pipeline`: each takes its own request type
    "product_copy": product_copy,
    "theme_build": theme_build,
    "personalization": personalization,
}
