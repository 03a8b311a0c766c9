"""Score an unpacked model archive on a dataset version's split, through the serving runtime.

Every record of the split is predicted with the same runtime the workers use (ONNX Runtime by default), and
the report keeps each prediction with its confidence and per-label scores beside the task's metrics
(``evaluation.metrics.metrics_for``). No Django: researchers run this on an export folder, and
``evaluation.records`` stores the same report in the database for the web app.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from datastore.loader import LoadedVersion, load
from evaluation.metrics import SINGLE_LABEL, TASKS, MetricsInputError, metrics_for
from modelpack.inputs import InputError
from modelpack.runtime import load_runtime, read_manifest

SPLITS = ("train", "val", "test")


class EvaluationError(ValueError):
    """A model or dataset that cannot be evaluated; the message says why."""


def parse_target(target: str) -> tuple[str, str]:
    """``DATASET[:split]`` -> (dataset, split); the split defaults to test, the dataset to "" (the caller's).

    Raises:
        EvaluationError: an unknown split.
    """
    name, _, split = target.partition(":")
    split = split or "test"
    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r} in {target!r}; use one of {', '.join(SPLITS)}")
    return name, split


def span_key(spans: Any) -> set[tuple[int, int, str]]:
    """(start, end, label) of each well-formed span of a value; anything else in it is left out."""
    items = spans if isinstance(spans, list) else []
    return {
        (int(s["start"]), int(s["end"]), str(s["label"]))
        for s in items
        if isinstance(s, dict) and {"start", "end", "label"} <= s.keys()
    }


def is_correct(task: str, true: Any, predicted: Any) -> bool:
    """Whole-record correctness: the label, the exact label set, or the exact span set."""
    if task == "multi_label":
        return set(true) == set(predicted)
    if task == "spans":
        return span_key(true) == span_key(predicted)
    return bool(true == predicted)


def _labels(model_labels: list[str], records: list[dict[str, Any]], task: str) -> list[str]:
    """The model's labels, then any label the version has that the model never learnt (always wrong)."""
    seen: list[str] = []
    for r in records:
        values = [r["label"]] if task in SINGLE_LABEL else r["label"]
        if task == "spans":
            values = [s.get("label") for s in r["label"] if isinstance(s, dict)]
        seen += [v for v in values if isinstance(v, str)]
    return list(model_labels) + sorted(set(seen) - set(model_labels))


def evaluate(
    model_dir: Path,
    data: LoadedVersion | None = None,
    dataset: str = "",
    repo: str = "",
    split: str = "test",
    batch_size: int = 256,
    backend: str = "onnxruntime",
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Predict every record of ``split`` and compute the task's metrics; ``on_progress`` is called with (records
    predicted, records) after each batch.

    Returns:
        ``{"split", "dataset", "task", "labels", "backend", "seconds", "metrics", "predictions"}``; each
        prediction is ``{"id", "text", "image", "label", "predicted", "confidence", "scores", "correct"}``.

    Raises:
        EvaluationError: the task type is unknown, the split is missing or empty, the version's task type
            differs from the model's, or a record cannot be predicted (the message names the record).
    """
    manifest = read_manifest(model_dir)
    task = manifest.get("task")
    if task not in TASKS:
        raise EvaluationError(f"the model's task {task!r} is not one of {', '.join(TASKS)}")
    images = task == "image_classification"
    data = data or load(dataset, repo=repo, splits=(split,), images=images)
    if data.task_type and data.task_type != task:
        raise EvaluationError(f"{data.name} is a {data.task_type} version; the model is a {task} model")
    runtime = load_runtime(model_dir, backend)
    records = data.splits.get(split)
    if not records:
        raise EvaluationError(f"{data.name} has no records in split {split!r}")
    began = time.perf_counter()
    predictions = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        try:
            predictions += runtime.predict([data.images[r["image"]] if images else r["text"] for r in chunk])
        except InputError as exc:
            where = chunk[exc.index]["id"] if exc.index is not None else "a batch"
            raise EvaluationError(f"record {where} cannot be predicted: {exc}") from None
        if on_progress:
            on_progress(len(predictions), len(records))
    labels = _labels(runtime.labels, records, task)
    y_true = [r["label"] for r in records]
    y_pred = [p.label for p in predictions]
    options: dict[str, Any] = {}
    if task in SINGLE_LABEL:
        options["confidences"] = [p.confidence for p in predictions]
        options["probabilities"] = np.array([[p.scores.get(label, 0.0) for label in labels] for p in predictions])
    elif task == "spans":
        options["texts"] = [r["text"] for r in records]
    try:
        metrics = metrics_for(task, y_true, y_pred, labels, **options)
    except MetricsInputError as exc:
        raise EvaluationError(f"{data.name}:{split} cannot be scored: {exc}") from None
    cases = [
        {
            "id": r["id"],
            "text": r.get("text", ""),
            "image": r.get("image", ""),
            "label": r["label"],
            "predicted": p.label,
            "confidence": p.confidence,
            "scores": p.scores,
            "correct": is_correct(task, r["label"], p.label),
        }
        for r, p in zip(records, predictions, strict=True)
    ]
    return {
        "split": split,
        "dataset": data.name,
        "task": task,
        "labels": labels,
        "backend": backend,
        "seconds": round(time.perf_counter() - began, 3),
        "metrics": metrics,
        "predictions": cases,
    }


def headline(task: str, metrics: dict[str, Any]) -> tuple[float, float]:
    """(score, macro F1): accuracy for single-label tasks, micro F1 for multi-label, strict micro F1 for spans."""
    if task in SINGLE_LABEL:
        return metrics["accuracy"], metrics["macro_f1"]
    if task == "multi_label":
        return metrics["micro_f1"], metrics["macro_f1"]
    return metrics["strict"]["micro_f1"], metrics["strict"]["macro_f1"]
