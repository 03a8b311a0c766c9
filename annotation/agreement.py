"""Inter-annotator agreement: Cohen's kappa per annotator pair, Fleiss' kappa per project, Krippendorff's
alpha for multi-label and spans, and one-vs-rest alpha per label. Pure code: no database.

Every measure works on *units*: one decision that each annotator made or did not make. A classification
task is one unit; a multi-label task is one binary unit per label; a span task is one unit per token
(labelled with the span label that covers it, or "O").
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score

_TOKEN = re.compile(r"\S+")
OUTSIDE = "O"


def units(task_type: str, labels: list[str], text: str, value: Any, key: Any) -> dict[tuple[Any, ...], str]:
    """Split one annotation into units: {(task key, unit): category}."""
    if task_type == "multi_label":
        chosen = set(value)
        return {(key, label): ("yes" if label in chosen else "no") for label in labels}
    if task_type == "spans":
        out = {}
        for n, match in enumerate(_TOKEN.finditer(text)):
            covering = [s["label"] for s in value if s["start"] < match.end() and match.start() < s["end"]]
            out[(key, n)] = covering[0] if covering else OUTSIDE
        return out
    return {(key,): value}


def fleiss_kappa(ratings: list[list[str]], categories: list[str]) -> float:
    """Fleiss' kappa for units that each have the same number (>= 2) of ratings."""
    if not ratings:
        return math.nan
    n = len(ratings[0])
    if n < 2 or any(len(r) != n for r in ratings):
        raise ValueError("Fleiss' kappa needs the same number (at least 2) of ratings per unit")
    table = np.array([[Counter(r)[c] for c in categories] for r in ratings], dtype=float)  # (units, categories)
    p_j = table.sum(axis=0) / (len(ratings) * n)
    p_i = ((table * (table - 1)).sum(axis=1)) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), (p_j**2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0


def alpha(matrix: list[list[str | None]]) -> float:
    """Krippendorff's alpha (nominal) of a raters x units matrix with None for missing."""
    values = sorted({v for row in matrix for v in row if v is not None})
    if len(values) < 2:
        return 1.0 if values else math.nan
    code = {v: i for i, v in enumerate(values)}
    data = np.array([[np.nan if v is None else code[v] for v in row] for row in matrix], dtype=float)
    try:
        return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    except ValueError:  # no unit with two ratings
        return math.nan


def agreement(task_type: str, labels: list[str], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    """Agreement of a project's annotations.

    Args:
        annotations: dicts with ``task``, ``annotator``, ``value`` and ``text``.
    """
    by_rater: dict[Any, dict[tuple[Any, ...], str]] = {}
    for a in annotations:
        by_rater.setdefault(a["annotator"], {}).update(units(task_type, labels, a["text"], a["value"], a["task"]))
    raters = sorted(by_rater, key=str)
    all_units = sorted({u for d in by_rater.values() for u in d}, key=str)
    matrix = [[by_rater[r].get(u) for u in all_units] for r in raters]
    categories = sorted({v for row in matrix for v in row if v is not None})

    pairs = {}
    for a, b in combinations(raters, 2):
        shared = [u for u in all_units if u in by_rater[a] and u in by_rater[b]]
        if len(shared) >= 2:
            x, y = [by_rater[a][u] for u in shared], [by_rater[b][u] for u in shared]
            kappa = float(cohen_kappa_score(x, y)) if len(set(x) | set(y)) > 1 else 1.0
            pairs[f"{a}|{b}"] = {"cohen_kappa": _finite(kappa), "units": len(shared)}

    rated = Counter(len([r for r in raters if u in by_rater[r]]) for u in all_units)
    fleiss = None
    if rated:
        n = max(rated, key=lambda k: (rated[k], k))  # the most common number of ratings per unit
        full = [[by_rater[r][u] for r in raters if u in by_rater[r]] for u in all_units]
        full = [r for r in full if len(r) == n]
        if n >= 2 and full:
            fleiss = _finite(fleiss_kappa(full, categories))

    per_label = {}
    if task_type == "multi_label":  # each label already has its own yes/no units
        for label in labels:
            columns = [i for i, u in enumerate(all_units) if u[1] == label]
            per_label[label] = _finite(alpha([[row[i] for i in columns] for row in matrix]))
    else:  # one-vs-rest
        for label in categories:
            binary = [[None if v is None else str(v == label) for v in row] for row in matrix]
            per_label[label] = _finite(alpha(binary))
    return {
        "annotators": len(raters),
        "units": len(all_units),
        "krippendorff_alpha": _finite(alpha(matrix)),
        "fleiss_kappa": fleiss,
        "per_label_alpha": per_label,
        "pairs": pairs,
    }


def _finite(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 4)


def majority_share(values: list[Any]) -> float | None:
    """Share of one task's annotations equal to the most common one (1.0: all agree); None without any."""
    if not values:
        return None
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    return counts.most_common(1)[0][1] / len(values)
