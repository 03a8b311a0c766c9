"""What researchers ask of dataset versions: what is in one (`describe`) and what changed between two (`diff`).

Works on loaded versions (``datastore.loader.load``), so it needs only the data repository: no Django.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from datastore.loader import LoadedVersion
from datastore.splits import empty_split_warnings

IMBALANCE_RATIO = 10.0  # most frequent label over the least frequent one
RARE_SHARE = 0.02  # a label on fewer than 2% of the records


def describe(version: LoadedVersion) -> dict[str, Any]:
    """Counts and label distribution per split, with warnings about an empty val or test split, imbalance and
    leakage.

    Leakage is the same content (``content_hash``, else the text) in more than one split: a model could be
    scored on what it was trained on.
    """
    manifest = version.manifest
    counts = manifest.get("counts") or {split: len(rows) for split, rows in version.splits.items()}
    warnings = empty_split_warnings(counts)
    totals: dict[str, int] = defaultdict(int)
    for dist in manifest.get("label_distribution", {}).values():
        for label, n in dist.items():
            totals[label] += n
    records = sum(manifest.get("counts", {}).values())
    for label in manifest.get("labels", []):
        totals.setdefault(label, 0)
    if totals:
        most, least = max(totals.values()), min(totals.values())
        if least == 0:
            empty = sorted(k for k, v in totals.items() if v == 0)
            warnings.append(f"imbalance: no examples of {', '.join(empty)}")
        elif most / least > IMBALANCE_RATIO:
            warnings.append(f"imbalance: the most frequent label has {most / least:.1f}x the examples of the rarest")
        rare = sorted(k for k, v in totals.items() if 0 < v < RARE_SHARE * max(records, 1))
        if rare:
            warnings.append(f"rare labels (under {RARE_SHARE:.0%} of records): {', '.join(rare)}")
    leaks = leakage(version)
    if leaks:
        warnings.append(f"leakage: {len(leaks)} contents occur in more than one split (e.g. {leaks[0]['splits']})")
    return {
        "name": version.name,
        "project": manifest.get("project"),
        "task_type": manifest.get("task_type"),
        "labels": manifest.get("labels", []),
        "counts": manifest.get("counts", {}),
        "label_distribution": manifest.get("label_distribution", {}),
        "label_totals": dict(sorted(totals.items())),
        "leakage": leaks,
        "warnings": warnings,
    }


def leakage(version: LoadedVersion) -> list[dict[str, Any]]:
    """Contents found in more than one split, with the ids and splits they occur in."""
    where: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split, rows in version.splits.items():
        for row in rows:
            where[row.get("content_hash") or row["text"]].append((split, row["id"]))
    return [
        {"content": key, "splits": sorted({s for s, _ in places}), "ids": sorted(i for _, i in places)}
        for key, places in sorted(where.items())
        if len({s for s, _ in places}) > 1
    ]


@dataclass
class VersionDiff:
    """Records added, removed, relabelled (same item, new label) and edited (same item, new content)."""

    a: str
    b: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    relabelled: list[dict[str, Any]] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.relabelled or self.edited)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "added": self.added,
            "removed": self.removed,
            "relabelled": self.relabelled,
            "edited": self.edited,
        }


def diff(a: LoadedVersion, b: LoadedVersion) -> VersionDiff:
    """Compare two versions record by record (by item id), over all their splits."""
    left = {r["id"]: r for rows in a.splits.values() for r in rows}
    right = {r["id"]: r for rows in b.splits.values() for r in rows}
    out = VersionDiff(a.name, b.name)
    out.added = sorted(set(right) - set(left))
    out.removed = sorted(set(left) - set(right))
    for key in sorted(set(left) & set(right)):
        old, new = left[key], right[key]
        if _canonical(old["label"]) != _canonical(new["label"]):
            out.relabelled.append({"id": key, "url": new.get("url"), "from": old["label"], "to": new["label"]})
        if old.get("content_hash", old["text"]) != new.get("content_hash", new["text"]):
            out.edited.append(key)
    return out


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
