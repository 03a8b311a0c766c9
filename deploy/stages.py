"""The stages of the road, each a call into its package plus the database record it leaves.

Shared by the ``fsml`` subcommands and the demo, so the demo runs exactly what a user runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from datastore import services
from datastore.archive import unpack
from datastore.dvcrepo import DataRepo
from datastore.models import DatasetVersion, ModelVersion
from evaluation.evaluate import evaluate
from training.config import TrainConfig
from training.export import ExportReport, export
from training.package import build_archive
from training.train import TrainResult, save_checkpoint, train


def data_repo() -> DataRepo:
    return DataRepo(Path(settings.DVC_REPO_DIR), settings.DVC_REMOTE)


def train_and_export(
    config: TrainConfig, out_dir: Path, on_epoch: Callable[[dict[str, float]], None] | None = None
) -> tuple[TrainResult, ExportReport]:
    """Train from the dataset version through the loader, save a checkpoint, export ONNX with parity."""
    from datastore.loader import load

    data = load(config.dataset, repo=config.data_repo)
    result = train(config, data, on_epoch=on_epoch)
    save_checkpoint(result, out_dir / "checkpoint")
    sample = [r["text"] for r in data.splits["val"][:512]]
    report = export(result, out_dir / "export", sample)
    return result, report


def evaluate_export(export_dir: Path, dataset: str, split: str = "test") -> dict[str, Any]:
    """Score an export folder on a dataset version split through the serving runtime."""
    return evaluate(export_dir, dataset=dataset, repo=str(data_repo().root), split=split)


def package_and_register(
    export_dir: Path, name: str, dataset: DatasetVersion | None, metrics: dict[str, Any]
) -> ModelVersion:
    """Build the archive into the model store and record it as the next version of ``name``."""
    version = services.next_model_version(name)
    out = Path(settings.MODEL_STORE_DIR) / name / f"{name}-{version}.tar.gz"
    if out.exists():
        raise FileExistsError(f"{out} already exists: model versions are immutable")
    sha, manifest = build_archive(export_dir, out, name, version, dataset.name if dataset else "", metrics)
    task = manifest.get("task", "text_classification")
    return services.register_model_version(name, task, str(out), sha, manifest, dataset, version=version)


def evaluate_model(model: ModelVersion, split: str = "test") -> dict[str, Any]:
    """Evaluate a registered model version (from its verified archive) on its dataset version."""
    if model.dataset_version is None:
        raise ValueError(f"{model} has no dataset version to evaluate on")
    dest = Path(settings.MODEL_CACHE_DIR) / model.name / str(model.version)
    unpack(Path(model.archive_path), dest, expected_sha256=model.archive_sha256)
    report = evaluate_export(dest, model.dataset_version.name, split)
    services.record_model_metrics(model, split, report["metrics"])
    out = Path(settings.FSML_HOME) / "evaluations" / f"{model.name}-{model.version}-{split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report
