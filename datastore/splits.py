"""Train/val/test assignment: a stable hash of the item (an item keeps its split in every dataset version), or a
split fixed by an import (a data set's official split). Pure code."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")
DEFAULT_VAL_PCT = 10
DEFAULT_TEST_PCT = 10


class SplitError(ValueError):
    """Split options or a split name that cannot be used; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_ratios(val_pct: int, test_pct: int) -> None:
    """Refuse percentages that leave no training data or are not whole numbers from 0 to 100.

    Raises:
        SplitError: a percentage is negative, not a whole number, or val + test is 100 or more.
    """
    for name, pct in (("val_pct", val_pct), ("test_pct", test_pct)):
        if isinstance(pct, bool) or not isinstance(pct, int) or pct < 0:
            raise SplitError(f"{name} must be a whole number from 0 to 99, not {pct!r}")
    if val_pct + test_pct >= 100:
        raise SplitError(f"val_pct + test_pct must be under 100 (train needs records), not {val_pct + test_pct}")


def split_of(key: str, val_pct: int = DEFAULT_VAL_PCT, test_pct: int = DEFAULT_TEST_PCT, seed: str = "") -> str:
    """Assign a split from a stable hash of the item's key (its identity), salted by ``seed`` when one is given.

    With no seed this is ``sha256(key)[:8] % 100``, the split every earlier dataset version used.
    """
    bucket = int(hashlib.sha256((seed + key).encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test_pct:
        return "test"
    if bucket < test_pct + val_pct:
        return "val"
    return "train"


def fixed_split(value: str) -> str:
    """A split named by an import (a column or a folder): ``train``, ``val`` or ``test`` (any case), or "" for
    none. Raises SplitError for anything else."""
    name = (value or "").strip().lower()
    if name and name not in SPLITS:
        raise SplitError(f"split {value!r} is not one of {', '.join(SPLITS)} (or empty)")
    return name


def empty_split_warnings(counts: dict[str, int]) -> list[str]:
    """Warnings for a version whose val or test split holds no record (``counts``: records per split)."""
    out = []
    if not counts.get("val"):
        out.append(
            "the val split is empty: fsml train and fsml export refuse this version (the best epoch is chosen and "
            "the export checked on val records); snapshot again with --val-pct above 0"
        )
    if not counts.get("test"):
        out.append(
            "the test split is empty: no held-out score for a model trained on it (fsml package --no-evaluate "
            "packages without one); snapshot again with --test-pct above 0"
        )
    return out
