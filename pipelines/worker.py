"""What the Procfile's worker lines hand to the `dramatiq` command: the broker and every actor."""

from pipelines import actors  # noqa: F401  (registers the actors)
from pipelines.broker import broker

__all__ = ["broker"]
