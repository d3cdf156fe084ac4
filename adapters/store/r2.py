"""Cloudflare R2 (any S3 API) as an object store, over one boto3 client per store.

Every boto3/botocore failure is translated here into the project's errors, so no
botocore class ever reaches a caller, and no credential ever reaches a message.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from adapters.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    StoreError,
    TransientStoreError,
)
from adapters.retry import retry_after_s
from adapters.store.base import (
    StoredObject,
    check_body,
    check_conditions,
    check_key,
    check_prefix,
    normalize_metadata,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_TRANSIENT_BOTO = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    HTTPClientError,
    IncompleteReadError,
    ResponseStreamingError,
)
_THROTTLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ServiceUnavailable",
    "InternalError",
}
_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "Unauthorized",
}
_PRECONDITION_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}


@functools.cache
def _shared_loader() -> botocore.loaders.Loader:
    """One model loader per process: parsing the S3 model costs ~80 ms per fresh session."""
    return botocore.loaders.create_loader()


def isolated_botocore_session() -> botocore.session.Session:
    """A botocore session that ignores ~/.aws files and AWS_PROFILE (credentials are explicit)."""
    session = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    session.register_component("data_loader", _shared_loader())
    return session


class R2Store:
    """An R2 bucket (or any S3-compatible one, such as moto's server) behind `ObjectStore`."""

    name = "r2"

    def __init__(
        self,
        bucket: str,
        endpoint_url: str,
        access_key_id: str,
        secret_access_key: str,
        region: str = "auto",
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 2,  # botocore's meaning: retries after the first try
        max_pool_connections: int = 64,
    ) -> None:
        if not bucket:
            raise StoreError("R2 bucket name is empty: set R2_THEMES_BUCKET")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self._secrets = tuple(s for s in (access_key_id, secret_access_key) if s)
        config = Config(
            # boto3 >= 1.36 sends streaming checksums R2 has rejected.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
            signature_version="s3v4",
            s3={"addressing_style": "path"},
        )
        try:
            session = boto3.session.Session(botocore_session=isolated_botocore_session())
            self._client: S3Client = session.client(
                "s3",
                endpoint_url=endpoint_url,
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key,
                region_name=region,
                config=config,
            )
        except (BotoCoreError, ValueError) as exc:
            raise StoreError(
                self._scrub(f"cannot build the R2 client for endpoint {endpoint_url!r}: {exc}")
                + "; check R2_ENDPOINT_URL"
            ) from None

    def __repr__(self) -> str:
        return f"R2Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    @property
    def client(self) -> S3Client:
        """The store's one boto3 S3 client (thread-safe; reuse it, don't build more)."""
        return self._client

    # --- the ObjectStore protocol ----------------------------------------------

    def put(
        self,
        key: str,
        body: bytes,
        *,
        content_type: str = "application/json",
        metadata: dict[str, str] | None = None,
        if_none_match: bool = False,
        if_match: str | None = None,
    ) -> str:
        """Write `body` under `key`; return its ETag (see `ObjectStore.put`)."""
        check_key(key)
        body = check_body(body, content_type)
        meta = normalize_metadata(metadata)
        check_conditions(if_none_match, if_match)
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "Metadata": meta,
        }
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match if if_match.startswith('"') else f'"{if_match}"'
        with self._translate("put", key):
            response = self._client.put_object(**kwargs)
        return str(response["ETag"])

    def get(self, key: str) -> StoredObject:
        """Read `key` with its content type and metadata; raises `NotFound`."""
        check_key(key)
        with self._translate("get", key):
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            with contextlib.closing(response["Body"]):
                body = response["Body"].read()
        return StoredObject(
            key=key,
            body=body,
            content_type=response.get("ContentType") or "application/octet-stream",
            metadata=dict(response.get("Metadata") or {}),
            etag=response.get("ETag"),
        )

    def exists(self, key: str) -> bool:
        """True when `key` holds an object."""
        check_key(key)
        try:
            with self._translate("exists", key):
                self._client.head_object(Bucket=self.bucket, Key=key)
        except NotFound:
            return False
        return True

    def list(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix`, in lexical order (paginated list_objects_v2)."""
        check_prefix(prefix)
        return self._iter_keys(prefix)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        iterator = iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
        while True:
            with self._translate("list", prefix):
                page = next(iterator, None)
            if page is None:
                return
            for item in page.get("Contents") or ():
                yield item["Key"]

    def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""
        check_key(key)
        try:
            with self._translate("delete", key):
                self._client.delete_object(Bucket=self.bucket, Key=key)
        except NotFound:
            pass

    def ping(self) -> None:
        """Raise a `StoreError` unless the bucket answers with these credentials."""
        with self._translate("ping", ""):
            self._client.head_bucket(Bucket=self.bucket)

    # --- error translation -------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextlib.contextmanager
    def _translate(self, op: str, key: str) -> Iterator[None]:
        """Turn any boto3/botocore failure inside the block into a `StoreError` subclass."""
        try:
            yield
        except ClientError as exc:
            self._raise_client_error(op, key, exc)
        except _TRANSIENT_BOTO as exc:
            raise TransientStoreError(
                self._scrub(f"R2 {op} {key!r} on bucket {self.bucket!r} failed: {type(exc).__name__}: {exc}")
                + f"; is the endpoint {self.endpoint_url!r} reachable?"
            ) from None
        except NoCredentialsError:
            raise StoreError(
                f"R2 {op} {key!r}: no credentials; set R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
            ) from None
        except BotoCoreError as exc:
            raise StoreError(
                self._scrub(f"R2 {op} {key!r} on bucket {self.bucket!r} failed: {type(exc).__name__}: {exc}")
                + "; check R2_ENDPOINT_URL and R2_THEMES_BUCKET"
            ) from None

    def _raise_client_error(self, op: str, key: str, exc: ClientError) -> NoReturn:
        response: dict[str, Any] = dict(exc.response)
        error: dict[str, Any] = response.get("Error") or {}
        response_meta: dict[str, Any] = response.get("ResponseMetadata") or {}
        code = str(error.get("Code") or "")
        status = int(response_meta.get("HTTPStatusCode") or 0)
        message = self._scrub(str(error.get("Message") or ""))
        where = f"R2 {op} {key!r} on bucket {self.bucket!r}"
        detail = f"{code or status}" + (f": {message}" if message else "")
        if code in _PRECONDITION_CODES or (op == "put" and status in (409, 412)):
            raise AlreadyExists(f"{where}: precondition failed ({detail})")
        if code == "NoSuchBucket" or (op == "ping" and status == 404):
            raise StoreError(
                f"{where}: the bucket does not exist ({detail}); check R2_THEMES_BUCKET "
                f"and that R2_ENDPOINT_URL ({self.endpoint_url!r}) is the right account"
            )
        if code in ("NoSuchKey", "404", "NotFound") or status == 404:
            raise NotFound(f"{where}: no such key")
        if status >= 500 or status == 429 or code in _THROTTLE_CODES:
            raise TransientStoreError(
                f"{where}: the store is unavailable ({detail})", retry_after=_retry_after(exc)
            )
        if status in (401, 403) or code in _AUTH_CODES:
            raise StoreError(
                f"{where}: access denied ({detail}); check R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY, "
                f"that the token may read and write bucket {self.bucket!r}, and R2_ENDPOINT_URL"
            )
        if code in ("InvalidArgument", "KeyTooLongError", "InvalidObjectName"):
            raise InvalidInput(f"{where}: rejected by the store ({detail})")
        raise StoreError(
            f"{where}: failed ({detail}, HTTP {status}); check R2_ENDPOINT_URL, R2_THEMES_BUCKET "
            "and the credentials"
        )


def _retry_after(exc: ClientError) -> float | None:
    meta: dict[str, Any] = dict(exc.response.get("ResponseMetadata") or {})
    return retry_after_s(meta.get("HTTPHeaders") or {})
