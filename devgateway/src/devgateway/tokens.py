"""Offline tiktoken counts: encodings come from litellm's bundled files, never the network."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

_O200K_MODEL = re.compile(r"^(gpt-4o|gpt-4\.1|gpt-5|o\d|chatgpt-4o)")


def litellm_tokenizers_dir() -> Path | None:
    """The folder where litellm ships cl100k_base/o200k_base (found without importing litellm)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "litellm_core_utils" / "tokenizers"
        if candidate.is_dir():
            return candidate
    return None


def _point_tiktoken_at_bundled_files() -> None:
    """Make tiktoken read litellm's bundled encodings instead of downloading them."""
    folder = litellm_tokenizers_dir()
    if folder is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
        os.environ["CUSTOM_TIKTOKEN_CACHE_DIR"] = str(folder)


def encoding_name(model: str) -> str:
    """The tiktoken encoding used to count tokens for `model`."""
    bare = model.rsplit("/", 1)[-1].lower()
    return "o200k_base" if _O200K_MODEL.match(bare) else "cl100k_base"


@functools.cache
def _encoding(name: str) -> Any:
    _point_tiktoken_at_bundled_files()
    import tiktoken

    return tiktoken.get_encoding(name)


@functools.lru_cache(maxsize=16384)
def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    """Number of tokens in `text` under `encoding` (memoized)."""
    if not text:
        return 0
    return len(_encoding(encoding).encode(text, disallowed_special=()))


def count_model_tokens(text: str, model: str) -> int:
    """Number of tokens in `text` for `model`."""
    return count_tokens(text, encoding_name(model))


def warm_up() -> None:
    """Load both encodings now so the first request does not pay for it."""
    for name in ("cl100k_base", "o200k_base"):
        _encoding(name)
