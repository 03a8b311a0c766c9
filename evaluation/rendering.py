"""Server-side rendering helpers of the evaluation pages: scores in order, spans highlighted with escaping, span
tables, a case's neighbours in its list, metric deltas of two evaluations, and confusion-matrix shares."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from datastore.models import Evaluation, Item, Prediction
from datastore.naming import item_name
from evaluation.evaluate import span_key
from evaluation.metrics import SINGLE_LABEL


def sorted_scores(scores: Any) -> list[tuple[str, float]]:
    if not isinstance(scores, dict):
        return []
    numeric = [(str(k), float(v)) for k, v in scores.items() if isinstance(v, int | float)]
    return sorted(numeric, key=lambda kv: -kv[1])


def highlight(text: str, spans: Any) -> SafeString:
    """``text`` escaped, each span wrapped in ``<mark data-label=...>``; spans overlapping an earlier one, empty
    or outside the text are left out here (the span table lists every span)."""
    parts, cursor = [], 0
    for start, end, label in sorted(span_key(spans)):
        if start < cursor or end <= start or end > len(text):
            continue
        parts += [
            escape(text[cursor:start]),
            format_html('<mark data-label="{}">{}</mark>', label, text[start:end]),
        ]
        cursor = end
    parts.append(escape(text[cursor:]))
    return mark_safe("".join(parts))  # safe: every part above is escaped or built by format_html


def span_rows(prediction: Prediction) -> list[dict[str, Any]]:
    """Every true and predicted span with its text: a match (listed once), missed or extra."""
    true, predicted = sorted(span_key(prediction.true_value)), sorted(span_key(prediction.predicted_value))
    rows = [(span, "true", "match" if span in predicted else "missed") for span in true]
    rows += [(span, "predicted", "extra") for span in predicted if span not in true]
    return [
        {"start": s, "end": e, "label": label, "text": prediction.text[s:e], "side": side, "outcome": outcome}
        for (s, e, label), side, outcome in rows
    ]


# -- neighbours, comparisons and the confusion matrix ----------------------------------------------------------
LOWER_IS_BETTER = frozenset({"hamming loss", "ECE", "MCE"})
NO_DIRECTION = frozenset({"majority-class rate"})  # a property of the data, the same for every model


def _keyset(order: tuple[str, ...], current: Prediction, before: bool) -> Q:
    """The rows that sort before (or after) ``current`` under ``order`` (fields, ``-`` for descending)."""
    found, equal = Q(pk__in=[]), Q()
    for field in order:
        name = field.lstrip("-")
        descending = field.startswith("-")
        value = getattr(current, name)
        op = "lt" if descending != before else "gt"
        found |= equal & Q(**{f"{name}__{op}": value})
        equal &= Q(**{name: value})
    return found


def _reversed(order: tuple[str, ...]) -> list[str]:
    return [field[1:] if field.startswith("-") else f"-{field}" for field in order]


def neighbours(cases: QuerySet[Prediction], current: Prediction, order: tuple[str, ...]) -> dict[str, Any]:
    """The case before and after ``current`` in the list ``cases`` (filtered, in ``order``), its position and
    the list's length (four small queries, whatever the length)."""
    light = cases.only("id", "record_id")
    before = cases.filter(_keyset(order, current, before=True))
    return {
        "previous": light.filter(_keyset(order, current, before=True)).order_by(*_reversed(order)).first(),
        "next": light.filter(_keyset(order, current, before=False)).order_by(*order).first(),
        "position": before.count() + 1,
        "count": cases.count(),
    }


def _direction(name: str, delta: float) -> str:
    if name in NO_DIRECTION or abs(delta) < 5e-4:  # shown to 3 decimals: a smaller change reads as none
        return "same"
    return "better" if (delta < 0) == (name in LOWER_IS_BETTER) else "worse"


def metric_deltas(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """The headline figures of two evaluations side by side: A, B, B - A and whether that is better."""
    theirs = dict(b)
    rows = []
    for name, mine in a:
        if name not in theirs:
            continue
        delta = theirs[name] - mine
        rows.append({"name": name, "a": mine, "b": theirs[name], "delta": delta, "direction": _direction(name, delta)})
    return rows


def table_deltas(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per class (or label): precision, recall and F1 of A and B with their deltas (B - A)."""
    rows = []
    for label, mine in a.items():
        theirs = b.get(label)
        if not isinstance(mine, dict) or not isinstance(theirs, dict):
            continue
        row: dict[str, Any] = {"label": label, "support": mine.get("support")}
        for metric in ("precision", "recall", "f1"):
            x, y = float(mine.get(metric) or 0.0), float(theirs.get(metric) or 0.0)
            delta = y - x
            row[metric] = {"a": x, "b": y, "delta": delta, "direction": _direction(metric, delta)}
        rows.append(row)
    return rows


def confusion_rows(ev: Evaluation, true: str | None = None, predicted: str | None = None) -> list[dict[str, Any]]:
    """Rows of the confusion matrix (single-label tasks): each cell its count, its share of the row (the true
    label's items, so rows read as recall), a link to its cases, and whether the filter selects it."""
    confusion = ev.metrics.get("confusion_matrix")
    if ev.task_type not in SINGLE_LABEL or not confusion:
        return []
    base = reverse("evaluation", args=[ev.pk])
    labels = confusion["labels"]
    rows = []
    for i, (row_label, counts) in enumerate(zip(labels, confusion["matrix"], strict=True)):
        total = sum(counts)
        cells = []
        for j, (column_label, count) in enumerate(zip(labels, counts, strict=True)):
            share = count / total if total else 0.0
            cells.append(
                {
                    "i": i,
                    "j": j,
                    "count": count,
                    "share": share,
                    "url": f"{base}?{urlencode({'true': row_label, 'predicted': column_label})}#cases",
                    "predicted": column_label,
                    "diagonal": i == j,
                    "alpha": f"{0.06 + 0.6 * share:.2f}" if count else "0",
                    "active": (true, predicted) == (str(row_label), str(column_label)),
                }
            )
        rows.append({"label": row_label, "cells": cells, "total": total})
    return rows


def name_of(item: Item | None, text: str = "", image: str = "") -> str:
    """A case's human name: its item's title, web address or file name, else the first words of its text."""
    if item is None:
        return item_name(image=image, text=text)
    return item_name(item.title, item.canonical_url, item.image or image, text)


def figures(ev: Evaluation) -> list[tuple[str, float]]:
    """The headline numbers of the evaluation's task type, as (name, value), those the metrics hold."""
    m = ev.metrics
    if ev.task_type == "multi_label":
        names = [
            "subset_accuracy",
            "micro_precision",
            "micro_recall",
            "micro_f1",
            "macro_f1",
            "samples_f1",
            "hamming_loss",
        ]
        return [(name.replace("_", " "), m[name]) for name in names if name in m]
    if ev.task_type == "spans":
        return [
            (f"{kind} {name.replace('_', ' ')}", m[kind][name])
            for kind in ("strict", "token")
            for name in ("micro_precision", "micro_recall", "micro_f1", "macro_f1")
            if name in m.get(kind, {})
        ]
    out = [(n.replace("_", " "), m[n]) for n in ("accuracy", "macro_precision", "macro_recall", "macro_f1") if n in m]
    out += [(name.replace("_", "-"), value) for name, value in m.get("top_k", {}).items()]
    if "majority_rate" in m:
        out.append(("majority-class rate", m["majority_rate"]))
    calibration = m.get("calibration", {})
    out += [(name.upper(), calibration[name]) for name in ("ece", "mce") if name in calibration]
    return out


def metric_tables(ev: Evaluation) -> list[dict[str, Any]]:
    """Per-class (single-label), per-label (multi-label) or per-label strict and token tables (spans)."""
    m = ev.metrics
    if ev.task_type == "spans":
        return [
            {"id": f"per-label-{kind}", "title": f"Per label, {kind} span match", "rows": m[kind]["per_label"]}
            for kind in ("strict", "token")
            if "per_label" in m.get(kind, {})
        ]
    key = "per_label" if ev.task_type == "multi_label" else "per_class"
    title = "Per label" if ev.task_type == "multi_label" else "Per class"
    return [{"id": key.replace("_", "-"), "title": title, "rows": m.get(key, {})}]
