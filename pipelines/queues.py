"""The queue names: the interactive lane's, and the batch lane's (catalog copy, theme builds)."""

from __future__ import annotations

INTERACTIVE = "interactive"
BATCH = "batch"

__all__ = ["BATCH", "INTERACTIVE"]
