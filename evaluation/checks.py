"""Input checks shared by ``evaluation.metrics``: each bad input raises ``MetricsInputError`` naming the argument."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class MetricsInputError(ValueError):
    """Input that metrics cannot be computed from; ``argument`` names it and ``reason`` says what is wrong."""

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"{argument}: {reason}")
        self.argument, self.reason = argument, reason


# -- input checks -----------------------------------------------------------------------------------------
def check_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or not labels:
        raise MetricsInputError("labels", "must be a non-empty list of label names")
    if not all(isinstance(x, str | int | np.integer) and not isinstance(x, bool) for x in labels):
        raise MetricsInputError("labels", "must hold label names (strings or integers)")
    repeated = sorted({str(x) for x, c in Counter(labels).items() if c > 1})
    if repeated:
        raise MetricsInputError("labels", f"repeats {', '.join(repeated)}")
    return list(labels)


def check_lengths(**named: Sequence) -> int:
    """The common, non-zero length of the named sequences."""
    lengths = {}
    for name, values in named.items():
        if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
            raise MetricsInputError(name, f"must be a list, not {type(values).__name__}")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        raise MetricsInputError(" and ".join(lengths), "differ in length: " + ", ".join(map(str, lengths.values())))
    n = next(iter(lengths.values()))
    if not n:
        raise MetricsInputError(" and ".join(lengths), "are empty: nothing to score")
    return n


def check_known(values: Sequence, labels: list[str], name: str) -> None:
    known = set(labels)
    for i, value in enumerate(values):
        if not isinstance(value, str | int | np.integer) or isinstance(value, bool):
            raise MetricsInputError(f"{name}[{i}]", f"is a {type(value).__name__}, not a label")
    unknown = sorted({str(v) for v in values if v not in known})
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise MetricsInputError(name, f"has labels not in the label list: {shown}")


def check_spans(spans: Any, labels: list[str], length: int, name: str) -> None:
    if not isinstance(spans, Sequence) or isinstance(spans, str):
        raise MetricsInputError(name, f"must be a list of spans, not {type(spans).__name__}")
    for j, span in enumerate(spans):
        where = f"{name}[{j}]"
        if not isinstance(span, Mapping) or not {"start", "end", "label"} <= span.keys():
            raise MetricsInputError(where, "must be a dict with start, end and label")
        start, end = span["start"], span["end"]
        if any(isinstance(x, bool) or not isinstance(x, int | np.integer) for x in (start, end)):
            raise MetricsInputError(where, f"start and end must be integers, not {start!r} and {end!r}")
        if not 0 <= start < end <= length:
            raise MetricsInputError(
                where, f"needs 0 <= start < end <= {length} (the text's length); got {start}, {end}"
            )
        if span["label"] not in labels:
            raise MetricsInputError(where, f"label {span['label']!r} is not in the label list")


def float_vector(values: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise MetricsInputError(name, "must be a list of numbers") from None
    if array.ndim != 1:
        raise MetricsInputError(name, f"must be one-dimensional, not of shape {array.shape}")
    if not array.size:
        raise MetricsInputError(name, "is empty: nothing to score")
    check_finite(array, name)
    return array


def bool_vector(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not (array.dtype == bool or (array.dtype.kind in "iuf" and np.isin(array, (0, 1)).all())):
        raise MetricsInputError(name, "must be a list of booleans (or 0/1)")
    return array.astype(bool)


def check_finite(array: np.ndarray, name: str) -> None:
    bad = np.flatnonzero(~np.isfinite(array.ravel()))
    if bad.size:
        where = np.unravel_index(bad[0], array.shape)
        index = where[0] if array.ndim == 1 else tuple(int(x) for x in where)
        raise MetricsInputError(name, f"has {bad.size} NaN or infinite value(s), the first at index {index}")


def score_matrix(probabilities: Any, labels: Sequence[str] | None) -> np.ndarray:
    """(N, C) finite float scores, with C equal to the number of labels when labels are given."""
    try:
        scores = np.asarray(probabilities, dtype=float)
    except (TypeError, ValueError):
        raise MetricsInputError("probabilities", "must be an (N, C) array of numbers") from None
    if scores.ndim != 2 or not scores.size:
        raise MetricsInputError("probabilities", f"must be a non-empty (N, C) array, not of shape {scores.shape}")
    if labels is not None and scores.shape[1] != len(labels):
        raise MetricsInputError("probabilities", f"has {scores.shape[1]} columns for {len(labels)} labels")
    check_finite(scores, "probabilities")
    return scores


def column_indices(y_true: Sequence[int | str], labels: Sequence[str] | None, classes: int) -> np.ndarray:
    """Column index per item: integers are indices already, label names go through ``labels``."""
    index = {label: i for i, label in enumerate(labels or [])}
    out = []
    for i, y in enumerate(y_true):
        if isinstance(y, str):
            if y not in index:
                raise MetricsInputError(f"y_true[{i}]", f"{y!r} is not a label" + ("" if labels else " (give labels=)"))
            out.append(index[y])
        elif isinstance(y, int | np.integer) and not isinstance(y, bool) and 0 <= y < classes:
            out.append(int(y))
        else:
            raise MetricsInputError(f"y_true[{i}]", f"{y!r} is neither a label nor a column index below {classes}")
    return np.asarray(out, dtype=np.int64)
