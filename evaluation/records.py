"""Evaluations in the database: run and store one, filter its cases, compare two, export them.

``run_evaluation`` is what ``fsml evaluate MODEL DATASET[:split]`` and the web app call: it scores the model
through ``evaluation.evaluate`` (the workers' runtime) and stores every prediction, replacing an earlier
evaluation of the same model, dataset version and split in one transaction.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.models import DatasetVersion, Evaluation, Item, ModelVersion, Prediction
from evaluation.evaluate import SPLITS, EvaluationError, evaluate, headline

PAGE_SIZE = 50
CSV_COLUMNS = [
    "record_id",
    "true_label",
    "predicted_label",
    "confidence",
    "correct",
    "text",
    "image",
    "true_value",
    "predicted_value",
]


def short_label(task: str, value: Any) -> str:
    """The filterable form of a value: the label, a comma-joined sorted label set, or "" for spans."""
    if task == "multi_label":
        return ",".join(sorted(value))[:200]
    if task == "spans":
        return ""
    return str(value)[:200]


def run_evaluation(
    model: ModelVersion,
    dataset: DatasetVersion,
    split: str,
    repo: DataRepo,
    user: Any = None,
    backend: str = "onnxruntime",
) -> Evaluation:
    """Score ``model`` on ``dataset``'s split and store the evaluation with every prediction.

    Raises:
        EvaluationError: the model cannot be scored on that version (the message says why); nothing is stored.
        modelpack.archive.ArchiveError: the model archive is missing or fails its checksums.
        datastore.loader.DatasetError: the dataset version cannot be read.
    """
    if split not in SPLITS:
        raise EvaluationError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if model.task_type != dataset.project.task_type:
        raise EvaluationError(
            f"{model} is a {model.task_type} model and {dataset.name} a {dataset.project.task_type} version"
        )
    model_dir = services.unpacked_model(model)
    report = evaluate(model_dir, dataset=dataset.name, repo=str(repo.root), split=split, backend=backend)
    task, cases = report["task"], report["predictions"]
    items = _items_by_record(dataset, [c["id"] for c in cases])
    score, macro_f1 = headline(task, report["metrics"])
    with transaction.atomic():
        Evaluation.objects.filter(model_version=model, dataset_version=dataset, split=split).delete()
        evaluation = Evaluation.objects.create(
            model_version=model,
            dataset_version=dataset,
            split=split,
            task_type=task,
            labels=report["labels"],
            metrics=report["metrics"],
            n=len(cases),
            score=score,
            macro_f1=macro_f1,
            backend=backend,
            seconds=report["seconds"],
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        Prediction.objects.bulk_create(
            (
                Prediction(
                    evaluation=evaluation,
                    record_id=c["id"],
                    item_id=items.get(c["id"]),
                    text=c["text"],
                    image=c["image"],
                    true_label=short_label(task, c["label"]),
                    predicted_label=short_label(task, c["predicted"]),
                    true_value=c["label"],
                    predicted_value=c["predicted"],
                    confidence=c["confidence"],
                    correct=c["correct"],
                    scores=c["scores"],
                )
                for c in cases
            ),
            batch_size=1000,
        )
    if dataset.pk == model.dataset_version_id:
        services.record_model_metrics(model, split, report["metrics"])
    return evaluation


def _items_by_record(dataset: DatasetVersion, record_ids: list[str]) -> dict[str, int]:
    """Item ids of the records (a record's id is its item's url_hash), among the dataset's project's tasks."""
    found: dict[str, int] = {}
    for start in range(0, len(record_ids), 1000):
        rows = Item.objects.filter(
            tasks__project_id=dataset.project_id, url_hash__in=record_ids[start : start + 1000]
        ).values_list("url_hash", "pk")
        found.update(rows)
    return found


# -- browsing ---------------------------------------------------------------------------------------------------
@dataclass
class CaseFilter:
    """What the case list can be narrowed by; every field is optional."""

    true: str | None = None
    predicted: str | None = None
    correct: bool | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    q: str = ""
    order: str = "confidence"  # "confidence", "-confidence" or "record"

    ORDERS = {"confidence": ("confidence", "id"), "-confidence": ("-confidence", "id"), "record": ("record_id",)}

    @classmethod
    def from_query(cls, params: Any) -> CaseFilter:
        """From request.GET-like parameters; bad values raise EvaluationError with the parameter named."""
        out = cls(true=params.get("true") or None, predicted=params.get("predicted") or None)
        outcome = params.get("outcome", "")
        if outcome not in ("", "right", "wrong"):
            raise EvaluationError(f"outcome must be right or wrong, not {outcome!r}")
        out.correct = {"right": True, "wrong": False}.get(outcome)
        for name in ("min_confidence", "max_confidence"):
            raw = params.get(name, "")
            if raw != "":
                try:
                    value = float(raw)
                except ValueError:
                    raise EvaluationError(f"{name} must be a number between 0 and 1, not {raw!r}") from None
                if not 0.0 <= value <= 1.0:
                    raise EvaluationError(f"{name} must be between 0 and 1, not {raw!r}")
                setattr(out, name, value)
        out.q = (params.get("q") or "").strip()[:200]
        order = params.get("order") or "confidence"
        if order not in cls.ORDERS:
            raise EvaluationError(f"order must be one of {', '.join(cls.ORDERS)}, not {order!r}")
        out.order = order
        return out

    def apply(self, cases: QuerySet[Prediction]) -> QuerySet[Prediction]:
        if self.true is not None:
            cases = cases.filter(true_label=self.true)
        if self.predicted is not None:
            cases = cases.filter(predicted_label=self.predicted)
        if self.correct is not None:
            cases = cases.filter(correct=self.correct)
        if self.min_confidence is not None:
            cases = cases.filter(confidence__gte=self.min_confidence)
        if self.max_confidence is not None:
            cases = cases.filter(confidence__lte=self.max_confidence)
        if self.q:
            cases = cases.filter(Q(text__icontains=self.q) | Q(record_id=self.q))
        return cases.order_by(*self.ORDERS[self.order])


def cases(evaluation: Evaluation, flt: CaseFilter | None = None) -> QuerySet[Prediction]:
    return (flt or CaseFilter()).apply(Prediction.objects.filter(evaluation=evaluation))


def leaderboard(evaluations: QuerySet[Evaluation] | None = None) -> dict[str, Any]:
    """Model versions x dataset versions: the headline score of each stored evaluation (``evaluations``: those
    a user may see; default all). Cells list the evaluations of that pair, one per split."""
    rows: dict[int, dict[str, Any]] = {}
    datasets: dict[int, str] = {}
    evaluations = (
        (Evaluation.objects.all() if evaluations is None else evaluations)
        .select_related("model_version", "dataset_version")
        .order_by("model_version__name", "model_version__version", "dataset_version__name", "split")
    )
    for ev in evaluations.only(
        "id", "split", "score", "macro_f1", "n", "task_type", "model_version__name", "model_version__version",
        "dataset_version__name",
    ):  # fmt: skip
        datasets[ev.dataset_version_id] = ev.dataset_version.name
        row = rows.setdefault(ev.model_version_id, {"model": ev.model_version, "cells": {}})
        row["cells"].setdefault(ev.dataset_version_id, []).append(ev)
    order = sorted(datasets, key=lambda pk: datasets[pk])
    return {
        "datasets": [(pk, datasets[pk]) for pk in order],
        "rows": [{"model": row["model"], "cells": [row["cells"].get(pk, []) for pk in order]} for row in rows.values()],
    }


def compare(a: Evaluation, b: Evaluation) -> dict[str, list[tuple[Prediction, Prediction]]]:
    """Records both evaluations scored, by outcome: fixed (wrong in a, right in b), broken, both wrong.

    Raises:
        EvaluationError: the two are not on the same dataset version and split.
    """
    if (a.dataset_version_id, a.split) != (b.dataset_version_id, b.split):
        raise EvaluationError(
            f"compare two evaluations of one dataset version and split, not {a.dataset_version}:{a.split} "
            f"and {b.dataset_version}:{b.split}"
        )
    shown = ("id", "evaluation_id", "record_id", "text", "true_label", "predicted_label", "confidence", "correct")
    theirs = {p.record_id: p for p in b.predictions.only(*shown)}
    out: dict[str, list[tuple[Prediction, Prediction]]] = {"fixed": [], "broken": [], "both_wrong": []}
    for mine in a.predictions.only(*shown).order_by("record_id"):
        other = theirs.get(mine.record_id)
        if other is None:
            continue
        if not mine.correct and other.correct:
            out["fixed"].append((mine, other))
        elif mine.correct and not other.correct:
            out["broken"].append((mine, other))
        elif not mine.correct and not other.correct:
            out["both_wrong"].append((mine, other))
    return out


# -- export -----------------------------------------------------------------------------------------------------
def summary(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": evaluation.pk,
        "model": str(evaluation.model_version),
        "dataset": evaluation.dataset_version.name,
        "split": evaluation.split,
        "task": evaluation.task_type,
        "labels": evaluation.labels,
        "n": evaluation.n,
        "score": evaluation.score,
        "macro_f1": evaluation.macro_f1,
        "backend": evaluation.backend,
        "seconds": evaluation.seconds,
        "created_at": evaluation.created_at.isoformat(),
        "metrics": evaluation.metrics,
    }


def case_row(p: Prediction) -> dict[str, Any]:
    return {
        "record_id": p.record_id,
        "true_label": p.true_label,
        "predicted_label": p.predicted_label,
        "confidence": p.confidence,
        "correct": p.correct,
        "text": p.text,
        "image": p.image,
        "true_value": p.true_value,
        "predicted_value": p.predicted_value,
        "scores": p.scores,
    }


def iter_json(evaluation: Evaluation, flt: CaseFilter | None = None) -> Iterator[str]:
    """The evaluation as one JSON document, in chunks (summary, then the cases one by one)."""
    head = json.dumps(summary(evaluation), ensure_ascii=False)
    yield head[:-1] + ', "predictions": ['
    for i, p in enumerate(cases(evaluation, flt).iterator(chunk_size=2000)):
        yield ("," if i else "") + json.dumps(case_row(p), ensure_ascii=False)
    yield "]}"


def iter_csv(evaluation: Evaluation, flt: CaseFilter | None = None) -> Iterator[str]:
    """The cases as CSV rows (header first); values and spans are JSON in their cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for p in cases(evaluation, flt).iterator(chunk_size=2000):
        row = case_row(p)
        row["true_value"] = json.dumps(row["true_value"], ensure_ascii=False)
        row["predicted_value"] = json.dumps(row["predicted_value"], ensure_ascii=False)
        writer.writerow([row[c] for c in CSV_COLUMNS])
        yield flush()


def write_export(evaluation: Evaluation, path: Path) -> None:
    """Write the evaluation to ``path``: ``.json`` or ``.csv`` by its suffix.

    Raises:
        EvaluationError: another suffix.
    """
    chunks = {".json": iter_json, ".csv": iter_csv}.get(path.suffix.lower())
    if chunks is None:
        raise EvaluationError(f"export to .json or .csv, not {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        for chunk in chunks(evaluation):
            fh.write(chunk)
