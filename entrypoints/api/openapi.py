"""The OpenAPI document: readable operation ids, the bodies routes read themselves, signed webhooks.

Every route declares the refusals it can answer (`errors.declare`), in the service's one error
shape; FastAPI's default 422 (`HTTPValidationError`, a shape this service never answers) is
declared nowhere. tests/integration/test_openapi_client.py generates a client from the served
document and parses real answers through it.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header
from fastapi.routing import APIRoute

from entrypoints.api.common import BODY_SCHEMAS
from entrypoints.api.errors import WHY
from entrypoints.api.schemas import GenerationFinished

_FASTAPI_422 = ("HTTPValidationError", "ValidationError")
_REF = "#/components/schemas/{model}"


def operation_id(route: APIRoute) -> str:
    """`create_generation` -> `createGeneration`: what generated clients name their functions."""
    head, *rest = re.split(r"[^A-Za-z0-9]+", route.name)
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _declare_webhooks(app: FastAPI) -> None:
    @app.webhooks.post(
        "generation.finished",
        status_code=200,
        operation_id="generationFinished",
        responses={
            "2XX": {"description": "Received: the delivery is done (deduplicate on `id`)"},
            400: {"description": "Tried once more (a receiver whose clock disagrees), then given up"},
            "4XX": {"description": "A refusal: not tried again, except 408, 425 and 429"},
            429: {"description": "Tried again (as are 408, 425 and 5xx), never before Retry-After"},
            "5XX": {"description": "Tried again, with backoff, up to WEBHOOK_MAX_ATTEMPTS"},
        },
        tags=["webhooks"],
    )
    def generation_finished(
        body: GenerationFinished,
        x_wandstore_event: Annotated[
            Literal["generation.finished"], Header(alias="X-Wandstore-Event", description="The event")
        ],
        x_wandstore_delivery: Annotated[
            str,
            Header(
                alias="X-Wandstore-Delivery", description="`<job id>.<attempt>`: deduplicate on the job id"
            ),
        ],
        x_wandstore_signature: Annotated[
            str,
            Header(
                alias="X-Wandstore-Signature",
                pattern=r"^t=\d+,v1=[0-9a-f]{64}$",
                description="`t=<unix seconds>,v1=<hex HMAC-SHA256(the store's webhook secret, "
                '"<t>." + raw body)>`; signed afresh for every attempt. Refuse a timestamp more than '
                "a few minutes away.",
            ),
        ],
    ) -> None:
        """A finished generation POSTed to its `callback_url` (a job's webhook, a personalization's callback).

        Signed with the store's webhook secret (`wandstore-agents tokens webhook-secret STORE`);
        verify the HMAC over the raw body in constant time (docs: Webhooks and callbacks).
        `output` is the published document when the job wrote exactly one small JSON document.
        """


def _receiver_answers(doc: dict[str, Any]) -> None:
    """A webhook's responses are the receiver's: no body is read from them, and no 422 of ours."""
    for operations in doc.get("webhooks", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if "2XX" in responses:
                responses.pop("200", None)  # FastAPI's default; the range says it
            for response in responses.values():
                response.pop("content", None)


def _own_422s(doc: dict[str, Any]) -> None:
    """A route that declares no 422 of its own gets FastAPI's default, a shape never answered here:
    make it the service's (errors.py answers every validation error as `ErrorResponse`)."""
    default = "#/components/schemas/HTTPValidationError"
    for section in ("paths", "webhooks"):
        for operations in doc.get(section, {}).values():
            for operation in operations.values():
                response = operation.get("responses", {}).get("422")
                schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
                if schema.get("$ref") == default:
                    operation["responses"]["422"] = {
                        "description": WHY[422],
                        "content": {
                            "application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}
                        },
                    }


def install(app: FastAPI) -> None:
    """Declare the webhooks and serve the document with the routes' own bodies in its components."""
    _declare_webhooks(app)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = build()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in BODY_SCHEMAS.items():
            schemas.setdefault(name, schema)
        _receiver_answers(doc)
        _own_422s(doc)
        for name in _FASTAPI_422:
            schemas.pop(name, None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
