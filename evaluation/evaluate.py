"""Score an unpacked model archive on a dataset version's split, through the serving runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datastore.loader import LoadedVersion, load
from datastore.runtime import load_runtime, read_manifest
from evaluation.metrics import classification_metrics

SCORED = ("text_classification", "image_classification")


class EvaluationError(ValueError):
    """A model or dataset that cannot be evaluated; the message says why."""


def evaluate(
    model_dir: Path,
    data: LoadedVersion | None = None,
    dataset: str = "",
    repo: str = "",
    split: str = "test",
    batch_size: int = 256,
) -> dict[str, Any]:
    """Predict every record of ``split`` and compute metrics. Returns metrics plus per-item predictions.

    Single-label models (text and images) are scored here; multi-label and span metrics come with the
    evaluation app, and are refused with that reason until then.
    """
    task = read_manifest(model_dir).get("task")
    if task not in SCORED:
        raise EvaluationError(f"evaluation of {task} models is not available yet (only {', '.join(SCORED)})")
    runtime = load_runtime(model_dir)
    images = task == "image_classification"
    data = data or load(dataset, repo=repo, splits=(split,), images=images)
    records = data.splits[split]
    predictions = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        predictions += runtime.predict([data.images[r["image"]] if images else r["text"] for r in chunk])
    metrics = classification_metrics([r["label"] for r in records], [p.label for p in predictions], runtime.labels)
    cases = [
        {"id": r["id"], "label": r["label"], "predicted": p.label, "confidence": p.confidence}
        for r, p in zip(records, predictions, strict=True)
    ]
    return {"split": split, "dataset": data.name, "metrics": metrics, "predictions": cases}
