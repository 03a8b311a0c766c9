"""Data store errors, importable without Django (the CLI reports them before Django is set up)."""

from __future__ import annotations


class SnapshotError(Exception):
    """A snapshot that cannot be made; nothing was recorded."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"snapshot {name!r}: {reason}")
        self.name, self.reason = name, reason
