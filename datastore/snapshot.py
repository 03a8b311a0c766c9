"""Freeze a project's finished labels into a dataset version: deterministic files, tracked by DVC."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db.models import Q

from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.errors import SnapshotError
from datastore.loader import dataset_path, dataset_tag
from datastore.models import Annotation, DatasetVersion, Project, Task
from datastore.provenance import snapshot_provenance
from datastore.splits import DEFAULT_TEST_PCT, DEFAULT_VAL_PCT, SPLITS, SplitError, check_ratios, split_of

SNAPSHOT_STEPS = ("reading labels", "writing files", "dvc add, commit and push", "recording the version")


def final_label(values: list[Any]) -> Any:
    """Majority label of a task's annotations; ties go to the smallest label so the result is stable."""
    counts = Counter(json.dumps(v, sort_keys=True) for v in values)
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return json.loads(best)


def collect_records(project: Project) -> list[dict[str, Any]]:
    """One record per labelled task: adjudicated or imported gold labels, else the majority of the finished
    task's annotations.

    A record's ``id`` is the item's identity (the SHA-256 of its canonical URL), which outlives re-crawls
    that change the text: splits hash the id, so an item keeps its split in every version. Sorted by id,
    so the same database gives the same bytes. Image items carry ``image_file``, the stored file to copy, and
    tasks whose split an import fixed carry ``fixed_split``.
    """
    values: dict[int, list[Any]] = {}
    for task_id, value in Annotation.objects.filter(task__project=project, task__status=Task.Status.DONE).values_list(
        "task_id", "value"
    ):
        values.setdefault(task_id, []).append(value)
    # Plain rows, not model instances: building a Task and an Item per row cost ten times the query.
    labelled = (
        Task.objects.filter(project=project)
        .filter(Q(status=Task.Status.DONE) | Q(final_value__isnull=False))
        .values_list(
            "pk",
            "final_value",
            "item__url_hash",
            "item__content_hash",
            "item__text",
            "item__canonical_url",
            "item__image",
            "split",
        )
    )
    records = []
    for pk, final_value, url_hash, content_hash, text, url, image, split in labelled.iterator(chunk_size=2000):
        if final_value is None and pk not in values:
            continue  # done without annotations or a final label: nothing to take
        label = final_value if final_value is not None else final_label(values[pk])
        record = {"id": url_hash, "content_hash": content_hash, "text": text, "url": url, "label": label}
        if image:
            record["image_file"] = image
        if split:
            record["fixed_split"] = split  # set by an import; write_snapshot puts the record there
        records.append(record)
    records.sort(key=lambda r: r["id"])
    return records


def copy_images(folder: Path, records: list[dict[str, Any]]) -> None:
    """Copy each record's image into ``images/<sha256><suffix>``; the record keeps that relative path.

    Raises:
        SnapshotError: an image file is missing or unreadable (nothing is recorded).
    """
    for record in records:
        source = record.pop("image_file", None)
        if source is None:
            continue
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SnapshotError(folder.name, f"image of {record['url']} cannot be read: {exc}") from None
        rel = f"images/{hashlib.sha256(data).hexdigest()}{path.suffix.lower()}"
        target = folder / rel
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(data)
        record["image"] = rel


def write_snapshot(
    folder: Path,
    project: Project,
    records: list[dict[str, Any]],
    val_pct: int = DEFAULT_VAL_PCT,
    test_pct: int = DEFAULT_TEST_PCT,
    seed: str = "",
) -> dict[str, Any]:
    """Write one JSONL file per split (records sorted by id), images as files, and a manifest.

    A record whose split an import fixed goes there; the rest by the hash of their id (salted by ``seed``)
    into ``val_pct`` and ``test_pct`` percent. Nothing in the folder depends on the time or the machine: the
    same records and options give the same bytes.
    """
    folder.mkdir(parents=True)
    copy_images(folder, records)
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    fixed = 0
    for record in records:
        split = record.pop("fixed_split", "")
        fixed += bool(split)
        by_split[split or split_of(record["id"], val_pct, test_pct, seed)].append(record)
    files = {}
    for split, rows in by_split.items():
        data = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows).encode("utf-8")
        (folder / f"{split}.jsonl").write_bytes(data)
        files[f"{split}.jsonl"] = hashlib.sha256(data).hexdigest()
    fields = {
        "id": "item identity: SHA-256 of its canonical URL",
        "content_hash": "SHA-256 of the text",
        "text": "item text",
        "url": "canonical URL",
        "label": LABEL_FIELD[project.task_type],
    }
    if any("image" in r for r in records):
        fields["image"] = "path of the image file inside this folder"
    manifest = {
        "project": project.name,
        "task_type": project.task_type,
        "labels": list(project.labels),
        "schema": {"format": "jsonl", "record": fields},
        "counts": {s: len(rows) for s, rows in by_split.items()},
        "label_distribution": {s: label_counts(rows) for s, rows in by_split.items()},
        "provenance": snapshot_provenance(project, by_split),
        "source_query": {
            "project": project.name,
            "tasks": "status done (annotations from tasks with all their annotations), or with a final value",
            "label": "final value (adjudicated or imported gold), else the majority of annotations; ties to the "
            "smallest value",
        },
        "split": split_record(val_pct, test_pct, seed, fixed),
        "files": files,
        "format": "jsonl",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def split_record(val_pct: int, test_pct: int, seed: str, fixed: int) -> dict[str, Any]:
    """The manifest's ``split`` key. The default (no seed, no fixed split) is the key every earlier version has."""
    split: dict[str, Any] = {"method": "sha256(id)[:8] % 100", "key": "id", "val_pct": val_pct, "test_pct": test_pct}
    if seed:
        split.update(method="sha256(seed + id)[:8] % 100", seed=seed)
    if fixed:
        split["fixed"] = fixed  # records whose split an import fixed (train/val/test); the hash split the rest
    return split


LABEL_FIELD = {
    "text_classification": "one label name",
    "image_classification": "one label name",
    "multi_label": "a list of label names",
    "spans": "a list of {start, end, label}, character offsets into text",
}


def label_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How often each label occurs: per record for single labels, per label name for multi-label and spans."""
    counts: Counter[str] = Counter()
    for row in rows:
        label = row["label"]
        if isinstance(label, list):
            counts.update(x["label"] if isinstance(x, dict) else x for x in label)
        else:
            counts[label] += 1
    return dict(sorted(counts.items()))


def snapshot_project(
    project: Project,
    name: str,
    repo: DataRepo,
    created_by: Any = None,
    val_pct: int = DEFAULT_VAL_PCT,
    test_pct: int = DEFAULT_TEST_PCT,
    seed: str = "",
    on_step: Callable[[str], None] | None = None,
) -> DatasetVersion:
    """Export, ``dvc add``, commit, tag and push a dataset version, then record it.

    Tasks whose split an import fixed keep it; the others are split by the hash of their id into
    ``val_pct``/``test_pct`` percent, salted by ``seed`` when given (the default is the stable hash split).
    ``on_step`` is told each of the SNAPSHOT_STEPS as it starts (a progress bar's steps).

    Raises:
        SnapshotError: the name is not a valid version name, is taken, the split options are out of range,
            or the project has no finished labels. Nothing is recorded.
    """
    try:
        check_ratios(val_pct, test_pct)
    except SplitError as exc:
        raise SnapshotError(name, exc.reason) from None
    # The name becomes a folder that is deleted and rewritten, and a git tag: check it before either.
    if not services.NAME_RE.fullmatch(name):
        raise SnapshotError(name, f"dataset version names must match {services.NAME_RE.pattern}")
    if (
        DatasetVersion.objects.filter(name=name).exists()
        or (repo.root / ".git").exists()
        and repo.has_tag(dataset_tag(name))
    ):
        raise SnapshotError(name, "a dataset version with this name already exists (versions are immutable)")
    step = on_step or (lambda name: None)
    step(SNAPSHOT_STEPS[0])
    records = collect_records(project)
    if not records:
        raise SnapshotError(name, f"project {project.name!r} has no finished labels")
    repo.ensure()
    folder = repo.root / dataset_path(name)
    if folder.exists():
        shutil.rmtree(folder)  # left over from a failed attempt that recorded nothing
    step(SNAPSHOT_STEPS[1])
    manifest = write_snapshot(folder, project, records, val_pct, test_pct, seed)
    step(SNAPSHOT_STEPS[2])
    committed = repo.commit_folder(dataset_path(name), f"Dataset version {name}", dataset_tag(name))
    step(SNAPSHOT_STEPS[3])
    try:
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
    except Exception:
        repo.delete_tag(dataset_tag(name))  # no record, no version: the name stays free
        raise
