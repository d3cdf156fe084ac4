"""The bottom floor: settings, logging, errors, Redis access, object stores, ledger, token store.

Nothing here imports a higher floor (`domain`, `agents`, `pipelines`, `entrypoints`).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
