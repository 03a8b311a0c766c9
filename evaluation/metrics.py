"""Evaluation metrics per task type, computed with scikit-learn and seqeval (no Django, no torch).

Conventions shared by every function here:

* Averages over labels ("macro") run over the whole label list given, including labels with no support
  and no predictions ("empty classes"). Such a label scores 0 (``zero_division=0``) and pulls the macro
  average down: this is scikit-learn's behaviour with ``labels=``, kept on purpose so that scores of two
  models on one dataset version always average over the same labels. Results list those labels under
  ``empty_classes`` / ``empty_labels`` so the drop is never silent.
* Bad input raises :class:`MetricsInputError`, a ``ValueError`` naming the argument and the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)
from sklearn.preprocessing import MultiLabelBinarizer

from evaluation.checks import (
    MetricsInputError,
    bool_vector,
    check_known,
    check_labels,
    check_lengths,
    check_spans,
    column_indices,
    float_vector,
    score_matrix,
)
from modelpack.text import spans_to_tags, tokenize_with_offsets

SINGLE_LABEL = ("text_classification", "image_classification")
TASKS = (*SINGLE_LABEL, "multi_label", "spans")
TOP_K = (1, 3, 5)


# -- single-label classification -------------------------------------------------------------------------
def classification_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro and per-class precision/recall/F1, confusion matrix and the majority-class rate.

    Returns:
        ``n``, ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``, ``majority_rate``,
        ``per_class`` ({label: precision, recall, f1, support, predicted}), ``confusion_matrix``
        ({labels, matrix}: rows are true labels, columns predictions) and ``empty_classes``.
    """
    labels = check_labels(labels)
    n = check_lengths(y_true=y_true, y_pred=y_pred)
    check_known(y_true, labels, "y_true")
    check_known(y_pred, labels, "y_pred")
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    predicted = matrix.sum(axis=0)
    return {
        "n": n,
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "majority_rate": Counter(y_true).most_common(1)[0][1] / n,
        "per_class": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s), "predicted": int(c)}
            for label, p, r, f, s, c in zip(labels, precision, recall, f1, support, predicted, strict=True)
        },
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
        "empty_classes": [label for label, s, c in zip(labels, support, predicted, strict=True) if s == 0 == c],
    }


def calibration(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Expected and maximum calibration error over equal-width confidence bins, with the per-bin rows.

    Bin ``b`` of ``B`` holds confidences in ``(b/B, (b+1)/B]``; the first bin also holds 0. ECE is the sum over
    bins of ``count/n * |accuracy - mean confidence|``; MCE the largest such gap over non-empty bins.

    Returns:
        ``n``, ``bins``, ``ece``, ``mce``, ``accuracy``, ``mean_confidence`` and ``rows``: one per bin with
        ``lower``, ``upper``, ``count``, ``accuracy``, ``confidence`` and ``gap`` (the last three None when
        the bin is empty).
    """
    conf = float_vector(confidences, "confidences")
    if np.any((conf < 0) | (conf > 1)):
        raise MetricsInputError("confidences", f"must lie in [0, 1]; got values from {conf.min():g} to {conf.max():g}")
    hits = bool_vector(correct, "correct")
    if len(hits) != len(conf):
        raise MetricsInputError("correct", f"has {len(hits)} values for {len(conf)} confidences")
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise MetricsInputError("bins", f"must be a positive integer, not {bins!r}")
    # Edges as b/B (not linspace) so that a confidence of exactly 0.3 falls in (0.2, 0.3] as documented.
    index = np.searchsorted(np.arange(1, bins) / bins, conf, side="left")
    rows, ece, mce = [], 0.0, 0.0
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        row: dict[str, Any] = {"lower": b / bins, "upper": (b + 1) / bins, "count": count}
        if count:
            acc, mean_conf = float(hits[members].mean()), float(conf[members].mean())
            gap = abs(acc - mean_conf)
            ece, mce = ece + count / len(conf) * gap, max(mce, gap)
            row |= {"accuracy": acc, "confidence": mean_conf, "gap": gap}
        else:
            row |= {"accuracy": None, "confidence": None, "gap": None}
        rows.append(row)
    return {
        "n": len(conf),
        "bins": int(bins),
        "ece": ece,
        "mce": mce,
        "accuracy": float(hits.mean()),
        "mean_confidence": float(conf.mean()),
        "rows": rows,
    }


def top_k_accuracy(
    probabilities: Any, y_true: Sequence[int | str], k: int, labels: Sequence[str] | None = None
) -> float:
    """Share of items whose true class is among the ``k`` highest-scoring columns of ``probabilities``.

    Args:
        probabilities: (N, C) scores, one column per class (probabilities or logits: only the order counts).
        y_true: N column indices, or N label names when ``labels`` (the C column names) is given.
        k: 1 <= k <= C; k = C is trivially 1.
        labels: the column names, needed for label-name targets.
    """
    scores = score_matrix(probabilities, labels)
    n, classes = scores.shape
    if len(y_true) != n:
        raise MetricsInputError("y_true", f"has {len(y_true)} items for {n} rows of probabilities")
    target = column_indices(y_true, labels, classes)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= classes:
        raise MetricsInputError("k", f"must be an integer from 1 to the number of classes ({classes}), not {k!r}")
    if k == classes:
        return 1.0
    if classes == 2:
        # scikit-learn reads two columns as a binary problem, wants the positive column alone and thresholds
        # it at 0.5, which is the argmax only for rows that sum to 1: with k=1 < 2 the argmax is the answer.
        return float(np.mean(scores.argmax(axis=1) == target))
    # labels= keeps every column a class even when some never occur in y_true. Ties rank the later column first.
    return float(top_k_accuracy_score(target, scores, k=k, labels=np.arange(classes)))


# -- multi-label ------------------------------------------------------------------------------------------
def multilabel_metrics(y_true: list[list[str]], y_pred: list[list[str]], labels: list[str]) -> dict[str, Any]:
    """Micro, macro and per-sample F1, per-label scores, subset accuracy and Hamming loss.

    An item with no true and no predicted labels counts as right: subset accuracy 1 and, in ``samples_f1``,
    F1 1 (scikit-learn's ``zero_division=1`` applies only to that case there). Per-label and macro scores
    keep ``zero_division=0``.

    Returns:
        ``n``, ``subset_accuracy``, ``hamming_loss``, ``micro_precision``, ``micro_recall``, ``micro_f1``,
        ``macro_precision``, ``macro_recall``, ``macro_f1``, ``samples_f1``, ``per_label`` ({label:
        precision, recall, f1, support, predicted}) and ``empty_labels``.
    """
    labels = check_labels(labels)
    n = check_lengths(y_true=y_true, y_pred=y_pred)
    for values, name in ((y_true, "y_true"), (y_pred, "y_pred")):
        for i, item in enumerate(values):
            if isinstance(item, str | bytes) or not isinstance(item, Sequence | set | frozenset):
                raise MetricsInputError(f"{name}[{i}]", f"must be a list of labels, not {type(item).__name__}")
            check_known(item, labels, f"{name}[{i}]")
    binarizer = MultiLabelBinarizer(classes=labels)
    truth, predicted = binarizer.fit_transform(y_true), binarizer.transform(y_pred)  # (N, L) each
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    micro = precision_recall_fscore_support(truth, predicted, average="micro", zero_division=0)
    counts = predicted.sum(axis=0)
    return {
        "n": n,
        "subset_accuracy": float(accuracy_score(truth, predicted)),
        "hamming_loss": float(hamming_loss(truth, predicted)),
        "micro_precision": float(micro[0]),
        "micro_recall": float(micro[1]),
        "micro_f1": float(micro[2]),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
        "samples_f1": float(f1_score(truth, predicted, average="samples", zero_division=1)),
        "per_label": {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s), "predicted": int(c)}
            for label, p, r, f, s, c in zip(labels, precision, recall, f1, support, counts, strict=True)
        },
        "empty_labels": [label for label, s, c in zip(labels, support, counts, strict=True) if s == 0 == c],
    }


# -- spans ------------------------------------------------------------------------------------------------
def span_metrics(
    true_spans: list[list[dict]], pred_spans: list[list[dict]], labels: list[str], texts: list[str]
) -> dict[str, Any]:
    """Span-level precision/recall/F1 (micro, macro, per label), two ways; a span counts only on an exact match.

    ``strict`` compares the character spans themselves: (start, end, label) must be equal. ``token`` is the
    usual NER score: each text is tokenised with ``modelpack.text.tokenize_with_offsets``, spans become BIO
    tags with ``spans_to_tags`` (a token touched by a span joins it) and seqeval extracts the entities (its
    default, conlleval mode, which decodes tags as ``modelpack.text.tags_to_spans`` does and so scores what a
    tagging model can express). A span off by a character inside a token therefore still matches at token
    level but not in ``strict``; a span covering no token (whitespace) is absent at token level.

    Args:
        true_spans, pred_spans: per item, a list of ``{"start", "end", "label"}`` (character offsets, end
            exclusive).
        labels: the dataset version's span labels.
        texts: per item, the text the offsets point into.

    Returns:
        ``n`` and, under ``strict`` and ``token``: ``micro_precision``, ``micro_recall``, ``micro_f1``,
        ``macro_precision``, ``macro_recall``, ``macro_f1``, ``support``, ``predicted``, ``per_label``
        ({label: precision, recall, f1, support, predicted}) and ``empty_labels``.
    """
    labels = check_labels(labels)
    n = check_lengths(true_spans=true_spans, pred_spans=pred_spans, texts=texts)
    strict: dict[str, set] = {"true": set(), "pred": set()}
    token: dict[str, set] = {"true": set(), "pred": set()}
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise MetricsInputError(f"texts[{i}]", f"must be a string, not {type(text).__name__}")
        offsets = tokenize_with_offsets(text)
        for side, spans in (("true", true_spans[i]), ("pred", pred_spans[i])):
            name = f"{side}_spans[{i}]"
            check_spans(spans, labels, len(text), name)
            strict[side] |= {(i, s["start"], s["end"], s["label"]) for s in spans}
            entities = get_entities(spans_to_tags(offsets, spans))  # (label, first token, last token)
            token[side] |= {(i, first, last, label) for label, first, last in entities}
    return {"n": n, "strict": _span_scores(strict, labels), "token": _span_scores(token, labels)}


def _span_scores(spans: dict[str, set], labels: list[str]) -> dict[str, Any]:
    """Exact-match scores from sets of (item, start, end, label), as seqeval counts them."""
    rows, hits, found, gold = {}, 0, 0, 0
    for label in labels:
        true = {s for s in spans["true"] if s[-1] == label}
        pred = {s for s in spans["pred"] if s[-1] == label}
        tp = len(true & pred)
        p, r = _ratio(tp, len(pred)), _ratio(tp, len(true))
        rows[label] = {"precision": p, "recall": r, "f1": _f1(p, r), "support": len(true), "predicted": len(pred)}
        hits, found, gold = hits + tp, found + len(pred), gold + len(true)
    micro_p, micro_r = _ratio(hits, found), _ratio(hits, gold)
    return {
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": _f1(micro_p, micro_r),
        "macro_precision": float(np.mean([row["precision"] for row in rows.values()])),
        "macro_recall": float(np.mean([row["recall"] for row in rows.values()])),
        "macro_f1": float(np.mean([row["f1"] for row in rows.values()])),
        "support": gold,
        "predicted": found,
        "per_label": rows,
        "empty_labels": [label for label, row in rows.items() if row["support"] == 0 == row["predicted"]],
    }


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


# -- one entry point per task type ------------------------------------------------------------------------
def metrics_for(
    task_type: str,
    y_true: list[Any],
    y_pred: list[Any],
    labels: list[str],
    *,
    confidences: Sequence[float] | None = None,
    probabilities: Any = None,
    texts: list[str] | None = None,
    bins: int = 10,
) -> dict[str, Any]:
    """The metrics of one task type, as ``evaluation.evaluate`` reports them.

    Args:
        task_type: one of ``TASKS``.
        y_true, y_pred: labels per item (single-label tasks), label lists (``multi_label``) or span lists
            (``spans``).
        labels: the dataset version's label list.
        confidences: single-label only: the winning class's confidence per item, for calibration.
        probabilities: single-label only: (N, C) scores with columns in ``labels`` order; gives top-k accuracy
            for each k in (1, 3, 5) below C, and the confidences when those are not given.
        texts: per item text; required for ``spans``, ignored otherwise.
        bins: calibration bins.

    Returns:
        ``task`` plus the keys of ``classification_metrics`` (and ``calibration``: the ``calibration`` dict,
        ``top_k``: {"top_1": ..., "top_3": ...} when their inputs are given), of ``multilabel_metrics``, or
        of ``span_metrics``.
    """
    if task_type not in TASKS:
        raise MetricsInputError("task_type", f"unknown task type {task_type!r}; expected one of {', '.join(TASKS)}")
    if task_type not in SINGLE_LABEL:
        for name, value in (("confidences", confidences), ("probabilities", probabilities)):
            if value is not None:
                raise MetricsInputError(name, f"only single-label tasks are calibrated, not {task_type}")
        if task_type == "multi_label":
            return {"task": task_type, **multilabel_metrics(y_true, y_pred, labels)}
        if texts is None:
            raise MetricsInputError("texts", "span metrics need each item's text")
        return {"task": task_type, **span_metrics(y_true, y_pred, labels, texts)}
    out: dict[str, Any] = {"task": task_type, **classification_metrics(y_true, y_pred, labels)}
    if probabilities is not None:
        scores = score_matrix(probabilities, labels)
        if len(scores) != len(y_true):
            raise MetricsInputError("probabilities", f"has {len(scores)} rows for {len(y_true)} items")
        columns = {label: i for i, label in enumerate(labels)}
        target = [columns[y] for y in y_true]  # known labels: classification_metrics checked them
        out["top_k"] = {f"top_{k}": top_k_accuracy(scores, target, k) for k in TOP_K if k < len(labels)}
        if confidences is None:
            confidences = scores.max(axis=1)
    if confidences is not None:
        out["calibration"] = calibration(confidences, [t == p for t, p in zip(y_true, y_pred, strict=True)], bins)
    return out
