"""Secrets at rest: each store's Shopify Admin API token, encrypted with `STORE_SECRETS_KEY`.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): a token read from Redis without
the key is useless, and one altered in Redis fails to decrypt instead of decrypting to
something else. Several comma-separated keys rotate: the first encrypts, any of them decrypts.

With no key set and the embedded Redis (the demo, `make dev`), a key is made once and kept in
a file next to that Redis's data, so every process of the session reads the same one. With
`REDIS_URL` set, processes on other machines must agree on the key, so it has to be set.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from adapters.errors import ConfigError, PermanentError
from adapters.logs import register_secrets
from adapters.settings import Settings

KEY_FILE = "store-secrets.key"
HOW_TO = (
    "set STORE_SECRETS_KEY to a Fernet key (make one with `python -c "
    '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
)


class SecretBox:
    """Encrypt and decrypt short secrets with the configured keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigError(f"no store secrets key: {HOW_TO}")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                f"STORE_SECRETS_KEY is not a Fernet key (32 url-safe base64-encoded bytes): {HOW_TO}"
            ) from None
        register_secrets(keys)

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            secret = self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise PermanentError(
                "a stored secret does not decrypt with STORE_SECRETS_KEY (was the key changed without "
                "keeping the old one after it?); set the secret again"
            ) from None
        register_secrets([secret])  # from now on, this process scrubs it from any log line
        return secret


def _dev_key(folder: Path) -> str:
    """The embedded defaults' key: made once, readable by this user only."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(Fernet.generate_key().decode())
    return path.read_text().strip()


def open_box(settings: Settings) -> SecretBox:
    """The box for `settings`: STORE_SECRETS_KEY, or the embedded defaults' key file."""
    if settings.store_secrets_key is not None:
        keys = [k.strip() for k in settings.store_secrets_key.get_secret_value().split(",") if k.strip()]
        return SecretBox(keys)
    if settings.redis_url:
        raise ConfigError(
            f"STORE_SECRETS_KEY is not set, and REDIS_URL is shared by other machines: {HOW_TO}"
        )
    # The embedded Redis lives in the local store folder's parent (adapters/redis_conn.py).
    return SecretBox([_dev_key(settings.local_store_dir.expanduser().parent)])
