"""Import litellm lazily and offline.

litellm takes seconds to import and would download its price map and tiktoken's
encodings; this module points both at the copies bundled with litellm first.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from types import ModuleType


def tokenizers_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"


def prepare_offline_env() -> None:
    """Set the variables that keep litellm and tiktoken from reaching the network."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # Catalogs litellm would otherwise fetch from GitHub (e.g. Anthropic beta headers on
    # every Anthropic call): use the bundled copies.
    os.environ["LITELLM_OFFLINE_MODE"] = "true"
    os.environ["LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    tok = tokenizers_dir()
    if tok is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(tok)
        os.environ["CUSTOM_TIKTOKEN_CACHE_DIR"] = str(tok)


@functools.cache
def litellm() -> ModuleType:
    """The litellm module, configured for a service: no telemetry, no retries of its own."""
    prepare_offline_env()
    import litellm as _litellm

    _litellm.telemetry = False
    _litellm.suppress_debug_info = True
    _litellm.drop_params = True
    _litellm.num_retries = 0
    return _litellm
