"""The queue names: the interactive lane, the batch lane (catalog copy, theme builds), webhook deliveries."""

from __future__ import annotations

INTERACTIVE = "interactive"
BATCH = "batch"
DELIVERIES = "deliveries"

__all__ = ["BATCH", "DELIVERIES", "INTERACTIVE"]
