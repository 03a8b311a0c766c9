"""Adding tasks to a project: records and files from an import, uploaded images, and a model's suggestions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation import formats
from annotation.services.access import AnnotationError, Role, require_role, role_of
from annotation.validation import InvalidLabel, clean_value
from datastore import services as datastore_services
from datastore.models import Item, Project, Task
from datastore.services import unpacked_model
from modelpack.archive import ArchiveError
from modelpack.inputs import InputError
from modelpack.runtime import load_runtime
from modelpack.store import StoreError

MAX_IMPORT_RECORDS = 100_000


def import_source(project: Project) -> str:
    """The source that a project's imports are stored under.

    Keyed by the project's id, not its name: a name may be as long as a source's whole name, and a
    renamed project must find the items it imported before.
    """
    return f"import:project-{project.pk}"


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


def _refuse_text_into_images(project: Project) -> None:
    if project.task_type == Project.TaskType.IMAGE_CLASSIFICATION:
        raise AnnotationError(
            f"{project.task_type} projects take image files (format=images), not text records; nothing imported"
        )


def import_records(project: Project, user: Any, records: list[dict[str, Any]]) -> int:
    """Add imported texts as tasks, with their labels as final (gold) labels and predictions as suggestions.

    Every record is checked first; one bad record refuses the whole import and nothing is written.
    Returns the number of new tasks.
    """
    if role_of(project, user) != Role.MANAGER:
        raise AnnotationError("only a manager of the project can import", 403)
    _refuse_text_into_images(project)  # a task without an image cannot be labelled or evaluated
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
    with transaction.atomic():
        items = datastore_services.import_texts(import_source(project), [r["text"] for r in records])
        fresh = {item.pk for item in _new_items(project, items)}
        tasks = []
        now = timezone.now()
        for item, record in zip(items, records, strict=True):
            if item.pk not in fresh:
                continue
            fresh.discard(item.pk)  # a text repeated in the file: its first record makes the task
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


def preannotate(project: Project, model: Any, batch_size: int = 256) -> int:
    """Store a model version's prediction on every open task as a suggestion, with its uncertainty
    (1 - top confidence) for active learning. Runs the verified archive through the shared runtime."""
    if model.task_type != project.task_type:
        raise AnnotationError(f"model {model} is for {model.task_type}, the project is {project.task_type}")
    if set(model.manifest.get("labels", [])) != set(project.labels):
        raise AnnotationError(f"model {model} predicts {model.manifest.get('labels')}, not {project.labels}")
    try:
        runtime = load_runtime(unpacked_model(model))
    except (ArchiveError, InputError, StoreError) as exc:
        raise AnnotationError(f"model {model} cannot be loaded: {exc}") from None
    tasks = list(Task.objects.filter(project=project, status=Task.Status.OPEN).select_related("item").order_by("id"))
    predictions = []
    for start in range(0, len(tasks), batch_size):
        chunk = tasks[start : start + batch_size]
        try:
            predictions += runtime.predict([_model_input(project, t) for t in chunk])
        except InputError as exc:
            raise AnnotationError(f"task {chunk[exc.index or 0].pk}: {exc.reason}; nothing was written") from None
    for task, prediction in zip(tasks, predictions, strict=True):
        task.prediction = {**prediction.as_dict(), "model": str(model)}
        task.uncertainty = round(1.0 - prediction.confidence, 6)
    with transaction.atomic():  # every suggestion of this model, or none
        Task.objects.bulk_update(tasks, ["prediction", "uncertainty"], batch_size=1000)
    return len(tasks)


def _model_input(project: Project, task: Task) -> str | bytes:
    """What the runtime takes for a task: the item's text, or for image projects its stored image file's bytes."""
    if project.task_type != Project.TaskType.IMAGE_CLASSIFICATION:
        return task.item.text
    if not task.item.image:
        raise AnnotationError(f"task {task.pk}: its item has no image; nothing was written", task_id=task.pk)
    try:
        return Path(task.item.image).read_bytes()
    except OSError as exc:
        raise AnnotationError(
            f"task {task.pk}: its image cannot be read ({exc.strerror}); nothing was written", task_id=task.pk
        ) from None


def import_file(project: Project, user: Any, fmt: str, payload: bytes) -> tuple[int, int]:
    """Parse an import file and add its records as tasks, all or nothing, as the import API does.

    Returns (records read, new tasks). A malformed file is an AnnotationError with the parser's reasons.
    """
    require_role(project, user, Role.MANAGER)  # before any work on the file
    _refuse_text_into_images(project)
    try:
        records = formats.parse(fmt, payload, project.task_type)
    except formats.ImportFormatError as exc:
        raise AnnotationError(str(exc), errors=exc.errors[: formats.MAX_ERRORS]) from None
    return len(records), import_records(project, user, records)
