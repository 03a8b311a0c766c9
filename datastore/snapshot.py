"""Freeze a project's finished labels into a dataset version: deterministic files, tracked by DVC."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from django.db.models import Q

from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.errors import SnapshotError
from datastore.loader import dataset_path, dataset_tag
from datastore.models import Annotation, DatasetVersion, Project, Task
from datastore.splits import SPLITS, split_of


def final_label(values: list[Any]) -> Any:
    """Majority label of a task's annotations; ties go to the smallest label so the result is stable."""
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return json.loads(best)


def collect_records(project: Project) -> list[dict[str, Any]]:
    """One record per labelled task: adjudicated or imported gold labels, else the majority of the finished
    task's annotations. Sorted by content hash, so the same database gives the same bytes."""
    values: dict[int, list[Any]] = {}
    for task_id, value in Annotation.objects.filter(task__project=project, task__status=Task.Status.DONE).values_list(
        "task_id", "value"
    ):
        values.setdefault(task_id, []).append(value)
    labelled = (
        Task.objects.filter(project=project)
        .filter(Q(pk__in=list(values)) | Q(final_value__isnull=False))
        .select_related("item")
    )
    records = []
    for task in labelled.iterator(chunk_size=2000):
        item = task.item
        label = task.final_value if task.final_value is not None else final_label(values[task.pk])
        records.append({"id": item.content_hash, "text": item.text, "url": item.canonical_url, "label": label})
    records.sort(key=lambda r: r["id"])
    return records


def write_snapshot(folder: Path, project: Project, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write split JSONL files and a manifest; return the manifest."""
    folder.mkdir(parents=True)
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for record in records:
        by_split[split_of(record["id"])].append(record)
    for split, rows in by_split.items():
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    manifest = {
        "project": project.name,
        "task_type": project.task_type,
        "labels": list(project.labels),
        "counts": {s: len(rows) for s, rows in by_split.items()},
        "label_distribution": {
            s: dict(sorted(Counter(r["label"] for r in rows).items())) for s, rows in by_split.items()
        },
        "query": {"project": project.name, "task_status": "done", "label": "adjudicated, else majority"},
        "split": {"method": "sha256(content_hash) % 100", "val_pct": 10, "test_pct": 10},
        "format": "jsonl",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def snapshot_project(project: Project, name: str, repo: DataRepo, created_by: Any = None) -> DatasetVersion:
    """Export, ``dvc add``, commit, tag and push a dataset version, then record it.

    Raises:
        SnapshotError: the name is taken, or the project has no finished labels. Nothing is recorded.
    """
    if (
        DatasetVersion.objects.filter(name=name).exists()
        or (repo.root / ".git").exists()
        and repo.has_tag(dataset_tag(name))
    ):
        raise SnapshotError(name, "a dataset version with this name already exists (versions are immutable)")
    records = collect_records(project)
    if not records:
        raise SnapshotError(name, f"project {project.name!r} has no finished labels")
    repo.ensure()
    folder = repo.root / dataset_path(name)
    if folder.exists():
        shutil.rmtree(folder)  # left over from a failed attempt that recorded nothing
    manifest = write_snapshot(folder, project, records)
    committed = repo.commit_folder(dataset_path(name), f"Dataset version {name}", dataset_tag(name))
    return services.record_dataset_version(
        name=name,
        project=project,
        dvc_md5=committed.md5,
        git_rev=committed.rev,
        path=dataset_path(name),
        counts=manifest["counts"],
        label_distribution=manifest["label_distribution"],
        created_by=created_by,
    )
