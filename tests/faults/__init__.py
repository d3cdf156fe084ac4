"""The fault suite: real processes broken on purpose, and hostile input (see docs/reliability.md)."""
