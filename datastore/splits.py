"""Stable train/val/test assignment: an item keeps its split in every dataset version."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def split_of(key: str, val_pct: int = 10, test_pct: int = 10) -> str:
    """Assign a split from a stable hash of the item's key (its content hash)."""
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test_pct:
        return "test"
    if bucket < test_pct + val_pct:
        return "val"
    return "train"
