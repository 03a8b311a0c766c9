"""The stages of the road, each a call into its package plus the database record it leaves.

Shared by the ``fsml`` subcommands and the demo, so the demo runs exactly what a user runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings

from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.models import DatasetVersion, Evaluation, ModelVersion
from datastore.services import registry
from evaluation.evaluate import evaluate, parse_target
from evaluation.records import run_evaluation
from modelpack.archive import ArchiveError
from modelpack.store import model_store
from training.package import build_archive


def data_repo() -> DataRepo:
    return DataRepo(Path(settings.DVC_REPO_DIR), settings.DVC_REMOTE, settings.DVC_REMOTE_ENDPOINT)


def evaluate_export(export_dir: Path, dataset: str, split: str = "test") -> dict[str, Any]:
    """Score an export folder on a dataset version split through the serving runtime."""
    return evaluate(export_dir, dataset=dataset, repo=str(data_repo().root), split=split)


def package_and_register(
    export_dir: Path, name: str, dataset: DatasetVersion | None, metrics: dict[str, Any]
) -> ModelVersion:
    """Build the archive into the model store and record it as the next version of ``name``."""
    if not services.NAME_RE.fullmatch(name):
        raise ArchiveError(name, f"model names must match {services.NAME_RE.pattern}")
    version = services.next_model_version(name)
    store = model_store(settings.MODEL_STORE, settings.MODEL_STORE_ENDPOINT)
    with tempfile.TemporaryDirectory(prefix="fsml-package-") as tmp:
        built = Path(tmp) / f"{name}-{version}.tar.gz"
        sha, manifest = build_archive(export_dir, built, name, version, dataset.name if dataset else "", metrics)
        location = store.put(built, f"{name}/{built.name}")  # StoreError when that version's archive exists
    task = manifest["task"]
    try:
        return services.register_model_version(name, task, location, sha, manifest, dataset, version=version)
    except BaseException:  # refused or interrupted: a stored archive without its row would block this version
        store.discard(location)
        raise


def evaluate_model(ref: str, target: str = "", backend: str = "onnxruntime", user: Any = None) -> Evaluation:
    """Evaluate a registered model version (from its verified archive) on ``DATASET[:split]`` (no DATASET: the
    version it was trained on; no split: test) and store the evaluation with every prediction.

    Raises:
        LookupError: the model or the dataset version is unknown (``RegistryError`` carries ``reason``).
        EvaluationError, ArchiveError, DatasetError: it cannot be scored; nothing is stored.
    """
    model = registry.resolve(ref)
    name, split = parse_target(target)
    if name:
        dataset = DatasetVersion.objects.filter(name=name).select_related("project").first()
        if dataset is None:
            raise LookupError(f"no dataset version named {name!r}")
    elif model.dataset_version is None:
        raise LookupError(f"{model} records no dataset version: name one (fsml evaluate {ref} DATASET[:split])")
    else:
        dataset = model.dataset_version
    return run_evaluation(model, dataset, split, data_repo(), user=user, backend=backend)
