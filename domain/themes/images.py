"""Product images a theme may show: Shopify's CDN only, and the Content-Security-Policy that says so.

Shopify serves product images from `cdn.shopify.com` (`/s/files/...`, what every sample
catalog in `data/shopify/` uses) and from each shop's own domain under `/cdn/shop/`
(`{shop}.myshopify.com/cdn/shop/...`). Any other URL in a catalog is left out and the card
shows its placeholder: the page never asks another host for anything.
"""

from __future__ import annotations

from urllib.parse import urlsplit

CDN_HOST = "cdn.shopify.com"
SHOP_SUFFIX = ".myshopify.com"
SHOP_CDN_PATH = "/cdn/shop/"
IMG_SOURCES = f"https://{CDN_HOST} https://*{SHOP_SUFFIX}{SHOP_CDN_PATH}"
# The preview's policy: no scripts, no fetches, no frames, no forms; styles inline, images from Shopify.
PREVIEW_CSP = (
    f"default-src 'none'; img-src {IMG_SOURCES}; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'"
)
_BAD_CHARS = set(" \"'<>\\`\t\r\n")


def shopify_image(src: str | None) -> str:
    """`src` when it is an https URL on Shopify's CDN, else ''."""
    if not src or any(c in _BAD_CHARS for c in src):
        return ""
    try:
        parts = urlsplit(src)
        if parts.scheme != "https" or parts.username or parts.password or parts.port:
            return ""
    except ValueError:  # e.g. a port that is not a number
        return ""
    host = (parts.hostname or "").lower()
    if host == CDN_HOST and parts.path.startswith("/"):
        return src
    if host.endswith(SHOP_SUFFIX) and parts.path.startswith(SHOP_CDN_PATH):
        return src
    return ""
