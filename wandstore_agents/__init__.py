"""wandstore-agents: the service that does the thinking for WandStore storefronts.

This package is the shell around the agents and pipelines: settings, logging,
object stores, the ledger, the dev gateway, the HTTP API and the CLI.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
