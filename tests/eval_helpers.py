"""An evaluated project for the evaluation tests: real labels in MariaDB, a real DVC snapshot, two real trained
and packaged model versions, and their stored evaluations on the version's test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from annotation.services import create_project, import_records, set_role
from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.loader import load
from datastore.models import DatasetVersion, Evaluation, ModelVersion, Project
from datastore.snapshot import snapshot_project
from tests.helpers import gold_rows

LABELS = ["negative", "neutral", "positive"]


@dataclass
class Evaluated:
    project: Project
    dataset: DatasetVersion
    repo: DataRepo
    manager: Any
    weak: ModelVersion  # 1 epoch
    strong: ModelVersion  # 4 epochs
    first: Evaluation  # weak on dataset:test
    second: Evaluation  # strong on dataset:test


def registered_version(version: int, dataset: DatasetVersion, **fields: Any) -> ModelVersion:
    """A ``sentiment`` version row with no archive behind it (pages and access rules read only the row)."""
    return ModelVersion.objects.create(
        name="sentiment",
        version=version,
        task_type="text_classification",
        archive_path="-",
        archive_sha256=f"{version:x}" * 64,
        dataset_version=dataset,
        **fields,
    )


def train_and_register(tmp_path: Path, data: Any, dataset: DatasetVersion, name: str, epochs: int) -> ModelVersion:
    from training.config import TrainConfig
    from training.export import export
    from training.package import build_archive
    from training.train import train

    result = train(TrainConfig(dataset=dataset.name, epochs=epochs, min_freq=1, batch_size=32), data)
    export(result, tmp_path / name / "export", data, int8=False)
    version = services.next_model_version("sentiment")
    archive = tmp_path / name / f"sentiment-{version}.tar.gz"
    sha, manifest = build_archive(tmp_path / name / "export", archive, "sentiment", version, dataset.name, {})
    return services.register_model_version(
        "sentiment", "text_classification", str(archive), sha, manifest, dataset, version=version
    )


def evaluated_project(tmp_path: Path, n: int = 600) -> Evaluated:
    """A text-classification project with ``n`` gold-labelled corpus texts, snapshot ``v1``, two model
    versions (a weak and a stronger one) and both evaluated on v1:test."""
    from evaluation.records import run_evaluation

    manager = get_user_model().objects.get_or_create(username="manager")[0]
    manager.set_password("pw")
    manager.save()
    project = create_project("sentiment", "text_classification", LABELS, [], members=[])
    set_role(project, manager, "manager")
    rows = gold_rows(limit=n, seed=5)
    import_records(project, manager, rows)
    repo = DataRepo(tmp_path / "data", str(tmp_path / "remote"))
    dataset = snapshot_project(project, "v1", repo, created_by=manager)
    data = load("v1", repo=str(repo.root))
    weak = train_and_register(tmp_path, data, dataset, "weak", epochs=1)
    strong = train_and_register(tmp_path, data, dataset, "strong", epochs=4)
    first = run_evaluation(weak, dataset, "test", repo, user=manager)
    second = run_evaluation(strong, dataset, "test", repo, user=manager)
    return Evaluated(project, dataset, repo, manager, weak, strong, first, second)
