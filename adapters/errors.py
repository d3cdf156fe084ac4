"""Every exception the project raises; one root, a shallow tree.

"Retry me" (`RetryableError`) is kept apart from "failed" (`PermanentError`) so the
broker's retry policy can be decided from the type alone.
"""

from __future__ import annotations


class WandstoreError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(WandstoreError):
    """A setting is missing or malformed; the message names the variable."""


class InvalidInput(WandstoreError):
    """A payload, id or slug was rejected before any work was done."""


class RetryableError(WandstoreError):
    """Something that may succeed if tried again later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(WandstoreError):
    """Something that will fail the same way however often it is tried."""


# --- model gateway -------------------------------------------------------------


class GatewayError(WandstoreError):
    """Base for errors from the model gateway."""


class RateLimited(RetryableError, GatewayError):
    """429 from the provider or AI Gateway (rate or spend limit)."""


class TransientGatewayError(RetryableError, GatewayError):
    """Timeouts, connection failures, 5xx and truncated bodies."""


class PermanentGatewayError(PermanentError, GatewayError):
    """Bad request, auth failure, unknown model: retrying will not help."""


class InvalidOutput(PermanentError, GatewayError):
    """The model's output failed validation even after the repair attempt."""


# --- object store --------------------------------------------------------------


class StoreError(WandstoreError):
    """Base for object-store errors."""


class TransientStoreError(RetryableError, StoreError):
    """The object store timed out or answered 5xx."""


class AlreadyExists(StoreError):
    """A conditional create found the key already written."""


class NotFound(StoreError):
    """The key does not exist."""


# --- accounting ----------------------------------------------------------------


class BudgetExceeded(PermanentError):
    """A call would cross the store's daily budget or the job's cap."""


class BrokerUnavailable(RetryableError):
    """Redis (broker, ledger, status) could not be reached."""


# --- stores and Shopify ----------------------------------------------------------


class UnknownStore(InvalidInput):
    """A command named a store nobody added; the message names `stores add`."""


class ShopifyError(WandstoreError):
    """Base for errors from a store's Shopify Admin API."""


class ShopifyAuthError(PermanentError, ShopifyError):
    """Shopify refused the Admin API token (401/403): a person must set a new one."""


class ShopifyUnavailable(RetryableError, ShopifyError):
    """Shopify timed out, answered 5xx, or stayed throttled longer than we wait."""


class ShopifyQueryError(PermanentError, ShopifyError):
    """Shopify refused the query itself (a GraphQL error other than throttling)."""
