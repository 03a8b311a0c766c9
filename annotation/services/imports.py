"""Adding tasks to a project: records and files from an import, and uploaded images (a model's suggestions are
``annotation.preannotation``)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation import formats, image_formats
from annotation.services.access import AnnotationError, Role, require_role, role_of
from annotation.validation import InvalidLabel, clean_value
from datastore import services as datastore_services
from datastore.models import Item, Project, Task, TaskLabel
from datastore.services.items import ItemError, StoredImage, image_items, store_image_file

log = logging.getLogger(__name__)

MAX_IMPORT_RECORDS = 100_000
MAX_CONFLICTS_LISTED = 200


def import_source(project: Project) -> str:
    """The source that a project's imports are stored under.

    Keyed by the project's id, not its name: a name may be as long as a source's whole name, and a
    renamed project must find the items it imported before.
    """
    return f"import:project-{project.pk}"


def _labelled_ids(project: Project, tasks: list[Task]) -> list[int]:
    """The ids of the just created tasks that came with a gold label (looked up when the insert gave no ids)."""
    labelled = [t for t in tasks if t.final_value is not None]
    if all(t.pk is not None for t in labelled):
        return [t.pk for t in labelled]
    items = [t.item_id for t in labelled]
    return list(Task.objects.filter(project=project, item_id__in=items).values_list("pk", flat=True))


def _new_items(project: Project, items: list[Item]) -> list[Item]:
    """The distinct items not yet in the project, in input order.

    Items are compared by content as well as by row: the same text or image may already be a task
    under another source (a crawled item, or an import made before imports were keyed by project id).
    """
    tasks = Task.objects.filter(project=project)
    seen_items = set(tasks.values_list("item_id", flat=True))
    seen_content = set(tasks.values_list("item__content_hash", flat=True))
    fresh = []
    for item in items:
        if item.pk in seen_items or item.content_hash in seen_content:
            continue
        seen_items.add(item.pk)
        seen_content.add(item.content_hash)
        fresh.append(item)
    return fresh


def _refuse_text_into_images(project: Project, count: int) -> None:
    if project.task_type == Project.TaskType.IMAGE_CLASSIFICATION:
        raise AnnotationError(
            f"{project.task_type} projects take image files (format=images, or a zip archive of labelled images), "
            f"not text records: {count} text record(s) refused; nothing imported"
        )


def merge_duplicates(keys: list[str], records: list[dict[str, Any]], named: list[str]) -> tuple[list[int], int]:
    """The first record of each distinct key (a text, an image's content hash) carrying the key's one label.

    Records repeating a key with the same label, or with none, are duplicates (counted); two different labels
    for one key refuse the import with every conflict listed (``named[i]`` says which record ``i`` is): a
    label is never chosen silently. Returns (indexes of the records to keep, duplicates).
    """
    first: dict[str, int] = {}
    labels: dict[str, dict[str, list[int]]] = {}
    predictions: dict[str, Any] = {}
    for i, (key, record) in enumerate(zip(keys, records, strict=True)):
        first.setdefault(key, i)
        if record.get("value") is not None:
            labels.setdefault(key, {}).setdefault(json.dumps(record["value"], sort_keys=True), []).append(i)
        if record.get("prediction") is not None:
            predictions.setdefault(key, record["prediction"])
    conflicts = []
    for key, by_label in labels.items():
        if len(by_label) > 1:
            said = "; ".join(f"{label} ({', '.join(named[i] for i in at[:5])})" for label, at in by_label.items())
            conflicts.append(f"{named[first[key]]}: {said}")
    if conflicts:
        raise AnnotationError(
            f"{len(conflicts)} item(s) with conflicting labels, nothing imported: " + " | ".join(conflicts[:20]),
            errors=[(0, c) for c in conflicts[:MAX_CONFLICTS_LISTED]],
        )
    for key, i in first.items():
        if key in labels:  # the key's one label, wherever it was given
            records[i]["value"] = records[next(iter(labels[key].values()))[0]]["value"]
        records[i]["prediction"] = predictions.get(key)
    return sorted(first.values()), len(records) - len(first)


def import_records(project: Project, user: Any, records: list[dict[str, Any]]) -> int:
    """Add imported texts as tasks, with their labels as final (gold) labels and predictions as suggestions.

    Every record is checked first; one bad record refuses the whole import and nothing is written.
    Returns the number of new tasks.
    """
    if role_of(project, user) != Role.MANAGER:
        raise AnnotationError("only a manager of the project can import", 403)
    _refuse_text_into_images(project, len(records))  # a task without an image cannot be labelled or evaluated
    if len(records) > MAX_IMPORT_RECORDS:
        raise AnnotationError(f"at most {MAX_IMPORT_RECORDS} records per import", 413)
    problems = []
    for n, record in enumerate(records, start=1):
        for key in ("value", "prediction"):
            if record.get(key) is not None:
                try:
                    record[key] = clean_value(
                        project.task_type, project.labels, record[key], record["text"], project.allow_overlapping_spans
                    )
                except InvalidLabel as exc:
                    problems.append(f"record {n} {key}: {exc.reason}")
        if not record["text"].strip():
            problems.append(f"record {n}: empty text")
    if problems:
        raise AnnotationError(f"{len(problems)} problem(s), nothing imported: " + "; ".join(problems[:20]))
    texts = [r["text"] for r in records]
    keep, _ = merge_duplicates(texts, records, [f"record {n} ({t[:40]!r})" for n, t in enumerate(texts, start=1)])
    records = [records[i] for i in keep]
    with transaction.atomic():
        items = datastore_services.import_texts(import_source(project), [r["text"] for r in records])
        fresh = {item.pk for item in _new_items(project, items)}
        tasks = []
        now = timezone.now()
        for item, record in zip(items, records, strict=True):
            if item.pk not in fresh:
                continue
            fresh.discard(item.pk)
            tasks.append(
                Task(
                    project=project,
                    item=item,
                    prediction=record.get("prediction"),
                    # A gold label finishes the task: it is not queued, and snapshots take it.
                    status=Task.Status.DONE if record.get("value") is not None else Task.Status.OPEN,
                    final_value=record.get("value"),
                    adjudicated_by=user if record.get("value") is not None else None,
                    adjudicated_at=now if record.get("value") is not None else None,
                )
            )
        Task.objects.bulk_create(tasks, batch_size=1000)
        TaskLabel.refresh(_labelled_ids(project, tasks))  # gold labels: the data manager's label filter
    return len(tasks)


MAX_IMAGE_FILES = 100  # Django refuses more files per request (DATA_UPLOAD_MAX_NUMBER_FILES)


def import_images(project: Project, user: Any, files: list[tuple[str, bytes]]) -> int:
    """Add uploaded image files (name, bytes) as tasks of an image project; returns the number of new tasks.

    Every file is decoded first; one unreadable or unsupported file refuses them all and nothing is written.
    """
    if role_of(project, user) != Role.MANAGER:
        raise AnnotationError("only a manager of the project can import", 403)
    if project.task_type != Project.TaskType.IMAGE_CLASSIFICATION:
        raise AnnotationError(f"images are imported into image_classification projects, not {project.task_type}")
    if not files or len(files) > MAX_IMAGE_FILES:
        raise AnnotationError(f"send 1 to {MAX_IMAGE_FILES} image files as multipart fields 'file'")
    store = Path(settings.FSML_HOME) / "files" / "uploads"
    with transaction.atomic():
        try:
            items = datastore_services.import_images(import_source(project), files, store)
        except datastore_services.ItemError as exc:
            raise AnnotationError(f"{exc.url}: {exc.reason}; nothing imported") from None
        fresh = _new_items(project, items)
        Task.objects.bulk_create((Task(project=project, item=item) for item in fresh), batch_size=1000)
    return len(fresh)


def import_file(project: Project, user: Any, fmt: str, payload: bytes) -> tuple[int, int]:
    """Parse an import file and add its records as tasks, all or nothing, as the import API does.

    Returns (records read, new tasks). A malformed file is an AnnotationError with the parser's reasons.
    """
    require_role(project, user, Role.MANAGER)  # before any work on the file
    try:
        records = formats.parse(fmt, payload, project.task_type)
    except formats.ImportFormatError as exc:
        raise AnnotationError(str(exc), errors=exc.errors[: formats.MAX_ERRORS]) from None
    return len(records), import_records(project, user, records)


PROGRESS_EVERY = 500  # files between progress reports


def import_labelled_images(
    project: Project,
    user: Any,
    bundle: image_formats.Bundle,
    fmt: str,
    manifest: str = "",
    report: Callable[[int, int | None], None] | None = None,
) -> dict[str, Any]:
    """Add the labelled images of a bundle (``image_formats.parse_images``) as tasks, all or nothing.

    Labels become final (gold) labels, a split (a CSV column, a Label Studio ``data.split``, a split folder)
    becomes the task's fixed split, and each file's original name is kept on its item. Refused with the list,
    nothing written: a malformed bundle, a label not in the project's schema, an unreadable image, or one image
    given two different labels (the same content under two names). Each file is read, decoded and stored one at
    a time (``report(done, total)`` follows them); the items and tasks are then written in one transaction.
    A refused (or failed) import removes the image files it added to the store that no item records.
    """
    written: list[str] = []
    try:
        return _import_labelled_images(project, user, bundle, fmt, manifest, report, written)
    except BaseException:
        _remove_unrecorded(written)
        raise


def _remove_unrecorded(paths: list[str]) -> None:
    """Delete these store files unless an item records one (another import may have taken it meanwhile)."""
    try:
        for i in range(0, len(paths), 500):
            batch = paths[i : i + 500]
            recorded = set(Item.objects.filter(image__in=batch).values_list("image", flat=True))
            for path in batch:
                if path not in recorded:
                    Path(path).unlink(missing_ok=True)
    except Exception:  # the database gone as well: keep the files (unrecorded, they harm nothing)
        log.warning("could not remove the %d image file(s) of a refused import", len(paths), exc_info=True)


def _import_labelled_images(
    project: Project,
    user: Any,
    bundle: image_formats.Bundle,
    fmt: str,
    manifest: str,
    report: Callable[[int, int | None], None] | None,
    written: list[str],
) -> dict[str, Any]:
    records = _parsed_images(project, user, bundle, fmt, manifest)
    store = Path(settings.FSML_HOME) / "files" / "uploads"
    stored: list[StoredImage] = []
    bad: list[str] = []
    for n, record in enumerate(records, start=1):
        try:
            stored.append(store_image_file(record.file_name, bundle.read(record.file), store))
            if stored[-1].written:
                written.append(stored[-1].path)
        except ItemError as exc:
            bad.append(f"{record.file}: {exc.reason}")
        except OSError as exc:
            bad.append(f"{record.file}: cannot be read ({exc.strerror or exc})")
        if report is not None and (n % PROGRESS_EVERY == 0 or n == len(records)):
            report(n, len(records))
    if bad:
        raise AnnotationError(
            f"{len(bad)} file(s) are not readable images, nothing imported: " + "; ".join(bad[:20]),
            errors=[(0, b) for b in bad[:MAX_CONFLICTS_LISTED]],
        )
    rows = [{"value": r.value, "prediction": r.prediction, "split": r.split} for r in records]
    keep, duplicates = merge_duplicates([s.digest for s in stored], rows, [r.where or r.file for r in records])
    # One split per image: a copy under train/ and test/ would leak the test set into training.
    splits: dict[str, set[str]] = {}
    for image, row in zip(stored, rows, strict=True):
        splits.setdefault(image.digest, set()).add(row["split"])
    leaks = [
        f"{records[i].file}: {sorted(splits[stored[i].digest])}" for i in keep if len(splits[stored[i].digest]) > 1
    ]
    if leaks:
        raise AnnotationError(
            f"{len(leaks)} image(s) in more than one split, nothing imported: " + "; ".join(leaks[:20]),
            errors=[(0, leak) for leak in leaks[:MAX_CONFLICTS_LISTED]],
        )
    with transaction.atomic():
        items = image_items(import_source(project), [stored[i] for i in keep])
        fresh = {item.pk for item in _new_items(project, items)}
        now, tasks = timezone.now(), []
        for item, i in zip(items, keep, strict=True):
            if item.pk not in fresh:
                continue
            value = rows[i]["value"]
            tasks.append(
                Task(
                    project=project,
                    item=item,
                    prediction=rows[i]["prediction"],
                    status=Task.Status.DONE if value is not None else Task.Status.OPEN,
                    final_value=value,
                    adjudicated_by=user if value is not None else None,
                    adjudicated_at=now if value is not None else None,
                    split=rows[i]["split"],
                )
            )
        Task.objects.bulk_create(tasks, batch_size=1000)
        TaskLabel.refresh(_labelled_ids(project, tasks))  # gold labels: the data manager's label filter
    return {
        "files": len(records),
        "tasks_created": len(tasks),
        "duplicates": duplicates,
        "already_in_project": len(keep) - len(tasks),
        "labelled": sum(t.final_value is not None for t in tasks),
        "splits": dict(sorted(Counter(t.split or "hash" for t in tasks).items())),
    }


def count_labelled_images(project: Project, user: Any, bundle: image_formats.Bundle, fmt: str, manifest: str) -> int:
    """How many images a bundle would import, after every check that needs no file read (an API request makes
    them before it queues a large import). Raises AnnotationError as ``import_labelled_images`` does."""
    return len(_parsed_images(project, user, bundle, fmt, manifest))


def _parsed_images(
    project: Project, user: Any, bundle: image_formats.Bundle, fmt: str, manifest: str
) -> list[image_formats.ImageRecord]:
    require_role(project, user, Role.MANAGER)
    if project.task_type != Project.TaskType.IMAGE_CLASSIFICATION:
        images = sum(image_formats.is_image_name(n) for n in bundle.names())
        raise AnnotationError(
            f"{project.task_type} projects take text records, not image files: {images} image file(s) refused; "
            "nothing imported"
        )
    try:
        records = image_formats.parse_images(fmt, bundle, manifest)
    except formats.ImportFormatError as exc:
        raise AnnotationError(str(exc), errors=exc.errors[: formats.MAX_ERRORS]) from None
    if len(records) > MAX_IMPORT_RECORDS:
        raise AnnotationError(f"at most {MAX_IMPORT_RECORDS} images per import", 413)
    _check_image_labels(project, records)
    return records


def _check_image_labels(project: Project, records: list[image_formats.ImageRecord]) -> None:
    """Refuse labels (and suggestions) that are not the project's, listing each with how often it occurs."""
    allowed = set(project.labels)
    unknown = Counter(str(v) for r in records for v in (r.value, r.prediction) if v is not None and (v not in allowed))
    if unknown:
        listed = ", ".join(f"{label!r} ({n})" for label, n in unknown.most_common(50))
        raise AnnotationError(
            f"{len(unknown)} label(s) not in the project's labels {list(project.labels)}: {listed}; nothing imported",
            errors=[(0, label) for label in unknown],
        )
