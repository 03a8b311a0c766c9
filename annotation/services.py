"""Every write of the annotation workflow: projects and roles, task assignment, labels, skips and undo.

Invariants, under any concurrency:
- a task is handed to at most ``overlap`` annotators at once, counting submitted annotations and
  unexpired assignments;
- nobody is handed the same task twice (one Assignment row per task and annotator).
Both hold because assignments and annotations of a task are only written while its row is locked
(``SELECT ... FOR UPDATE``; candidates are picked with ``SKIP LOCKED`` on MySQL). Locking statements
never join other tables: a join would lock the project row too and serialise every annotator.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.validation import InvalidLabel, clean_value, distinct_names
from datastore.db import retry_deadlocks
from datastore.models import Annotation, Assignment, Item, Project, ProjectMember, Task

Role = ProjectMember.Role
MAX_SKIP_REASON = 500


class AnnotationError(Exception):
    """A request that cannot be accepted; ``status`` is the HTTP status it maps to."""

    def __init__(
        self, reason: str, status: int = 400, task_id: int | None = None, errors: list[Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason, self.status, self.task_id, self.errors = reason, status, task_id, errors or []


def create_project(
    name: str,
    task_type: str,
    labels: list[str],
    items: Iterable[Item] | QuerySet[Item],
    overlap: int = 1,
    guidelines: str = "",
    members: Iterable[Any] = (),
    **options: Any,
) -> Project:
    """Create a project, one task per item, and make ``members`` its annotators, in one transaction."""
    if task_type not in Project.TaskType.values:
        raise AnnotationError(f"unknown task type {task_type!r}; choose one of {Project.TaskType.values}")
    if not distinct_names(labels):
        raise AnnotationError("labels must be a non-empty list of distinct names")
    if overlap < 1:
        raise AnnotationError("overlap must be at least 1")
    with transaction.atomic():
        project = Project.objects.create(
            name=name, task_type=task_type, labels=list(labels), overlap=overlap, guidelines=guidelines, **options
        )
        for user in members:
            set_role(project, user, Role.ANNOTATOR)
        Task.objects.bulk_create((Task(project=project, item=item) for item in items), batch_size=1000)
    return project


def set_role(project: Project, user: Any, role: str) -> ProjectMember:
    if role not in Role.values:
        raise AnnotationError(f"unknown role {role!r}; choose one of {Role.values}")
    member, _ = ProjectMember.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return member


def role_of(project: Project, user: Any) -> str | None:
    """The user's role in the project; staff act as managers everywhere."""
    if user.is_staff:
        return Role.MANAGER
    cached = getattr(project, "_role_for", None)
    if cached is not None and cached[0] == user.pk:
        return cached[1]
    if getattr(project, "member_user", None) == user.pk:  # annotated by annotation.api.visible_projects
        return cast(str, project.member_role)  # type: ignore[attr-defined]  # the annotation named above
    return ProjectMember.objects.filter(project=project, user=user).values_list("role", flat=True).first()


def project_for_user(project_id: int, user: Any) -> Project | None:
    """The project and the user's role in one query, or None when the user is not allowed to see it.

    The role is kept on the instance, so ``role_of(project, user)`` costs no second query (staff need none:
    they manage every project). A plain join: it runs on every next-task and submit request, and a
    subquery annotation costs more to build than to run.
    """
    if user.is_staff:
        return Project.objects.filter(pk=project_id).first()
    member = ProjectMember.objects.select_related("project").filter(project_id=project_id, user_id=user.pk).first()
    if member is None:
        return None
    project = member.project
    project._role_for = (user.pk, member.role)  # type: ignore[attr-defined]
    return project


def _candidates(project: Project, user: Any, now: Any, rejected: list[int], lock: str) -> Task | None:
    """The first task of the queue that ``user`` may take: open, never handed to them, and held or done by
    fewer than ``overlap`` annotators. ``lock`` is "skip" (skip rows others lock), "wait", or "" (just look).

    Raw SQL on purpose: this runs on every next-task request, and building the same statement with the ORM
    (two correlated subqueries) costs more CPU than running it. One table, no joins, so FOR UPDATE locks
    task rows only; the ORDER BY is one the (project, status, id|uncertainty) indexes serve, so no filesort
    makes FOR UPDATE lock every candidate. DESC puts NULL uncertainties last on MySQL and SQLite.
    """
    features = connection.features
    clause = ""
    if lock == "skip" and features.has_select_for_update_skip_locked:
        clause = "FOR UPDATE SKIP LOCKED"
    elif lock and features.has_select_for_update:
        clause = "FOR UPDATE"
    if clause and not connection.in_atomic_block:
        raise RuntimeError("candidates are locked inside a transaction only")
    order = "t.uncertainty DESC, t.id DESC" if project.queue_order == Project.QueueOrder.UNCERTAINTY else "t.id"
    skip = f"AND t.id NOT IN ({', '.join(['%s'] * len(rejected))})" if rejected else ""
    sql = f"""
        SELECT t.* FROM {Task._meta.db_table} t
        WHERE t.project_id = %s AND t.status = %s
          AND NOT EXISTS (SELECT 1 FROM {Assignment._meta.db_table} mine
                          WHERE mine.task_id = t.id AND mine.annotator_id = %s)
          AND t.annotation_count + (SELECT COUNT(*) FROM {Assignment._meta.db_table} h
                                    WHERE h.task_id = t.id AND h.status = %s AND h.expires_at > %s) < %s
          {skip}
        ORDER BY {order} LIMIT 1 {clause}"""
    params = [
        project.pk,
        Task.Status.OPEN,
        user.pk,
        Assignment.Status.ACTIVE,
        connection.ops.adapt_datetimefield_value(now),
        project.overlap,
        *rejected,
    ]
    return next(iter(Task.objects.raw(sql, params)), None)


@retry_deadlocks()
def next_task(project: Project, user: Any) -> Assignment | None:
    """Hand ``user`` the next task of ``project`` and hold it for them (``project.lock_seconds``).

    A task the user already holds comes back first. Returns None when nothing is left for this user.
    """
    now = timezone.now()
    with transaction.atomic():
        held = (
            Assignment.objects.filter(
                task__project=project, annotator=user, status=Assignment.Status.ACTIVE, expires_at__gt=now
            )
            .select_related("task__item")  # the payload shows the task's item: no second and third query
            .order_by("assigned_at")
            .first()
        )
        if held is not None:
            return held
        rejected: list[int] = []
        while True:
            task = _candidates(project, user, now, rejected, lock="skip")
            if task is None:
                # Every eligible row may be locked by annotators being served this instant; that is not
                # "all done". If any is left, wait for its lock instead of skipping it.
                if _candidates(project, user, now, rejected, lock="") is None:
                    return None
                task = _candidates(project, user, now, rejected, lock="wait")
                if task is None:
                    return None
            # The count in the query above comes from the statement's snapshot, which can predate an
            # assignment committed just before we got the row lock. Count again now that we hold the lock:
            # a new statement sees every committed assignment, and no new one can appear for this task
            # (assignments are only written under the task's row lock), so the insert below cannot clash.
            holders = Assignment.objects.filter(task=task).filter(
                Q(annotator_id=user.pk) | Q(status=Assignment.Status.ACTIVE, expires_at__gt=now)
            )
            holder_ids = list(holders.values_list("annotator_id", flat=True))
            if user.pk not in holder_ids and task.annotation_count + len(holder_ids) < project.overlap:
                return Assignment.objects.create(
                    task=task, annotator=user, expires_at=now + timedelta(seconds=project.lock_seconds)
                )
            rejected.append(task.pk)  # stays locked until we commit, so nobody else gets it meanwhile


def _locked_assignment(task_id: int, user: Any) -> tuple[Task, Project, Assignment]:
    """Lock the task row, check the user may see its project, then find the user's assignment; refuse
    anything but a live assignment. A task of a project the user cannot see does not exist for them."""
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    project = project_for_user(task.project_id, user) if task is not None else None
    if task is None or project is None:
        raise AnnotationError("no such task", status=404, task_id=task_id)
    assignment = Assignment.objects.filter(task=task, annotator=user).first()
    if assignment is None:
        raise AnnotationError("this task was not handed to you; ask for the next task", 409, task_id)
    if assignment.status == Assignment.Status.SUBMITTED:
        raise AnnotationError("you already annotated this task", 409, task_id)
    if assignment.status == Assignment.Status.SKIPPED:
        raise AnnotationError("you skipped this task", 409, task_id)
    if assignment.expires_at <= timezone.now():
        raise AnnotationError("your hold on this task expired; it may have gone to someone else", 409, task_id)
    return task, project, assignment


def submit(task_id: int, user: Any, value: Any, lead_time: float = 0.0) -> Annotation:
    """Record ``user``'s label for a task they hold. Nothing is written when it is refused."""
    with transaction.atomic():
        task, project, assignment = _locked_assignment(task_id, user)
        # Only spans are checked against the text; labels need no second look-up.
        text = "" if project.task_type != Project.TaskType.SPANS else Item.objects.get(pk=task.item_id).text
        try:
            value = clean_value(project.task_type, project.labels, value, text, project.allow_overlapping_spans)
        except InvalidLabel as exc:
            raise AnnotationError(exc.reason, 400, task_id) from None
        try:  # the live assignment rules a second annotation out; the constraint is the backstop
            annotation = Annotation.objects.create(
                task=task, annotator=user, value=value, lead_time=max(0.0, float(lead_time))
            )
        except IntegrityError:  # leaves the transaction with the error: everything is rolled back
            raise AnnotationError("you already annotated this task", 409, task_id) from None
        assignment.status = Assignment.Status.SUBMITTED
        assignment.save(update_fields=["status"])
        task.annotation_count += 1
        if task.annotation_count >= project.overlap:
            task.status = Task.Status.DONE
        task.save(update_fields=["annotation_count", "status"])
    return annotation


def skip(task_id: int, user: Any, reason: str) -> Assignment:
    """Give a held task back with a reason; it goes to someone else, never back to this user."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_SKIP_REASON:
        raise AnnotationError(f"a skip needs a reason of 1 to {MAX_SKIP_REASON} characters", 400, task_id)
    with transaction.atomic():
        _, _, assignment = _locked_assignment(task_id, user)
        assignment.status, assignment.skip_reason = Assignment.Status.SKIPPED, reason
        assignment.save(update_fields=["status", "skip_reason"])
    return assignment


def undo(project: Project, user: Any) -> Assignment:
    """Take back the user's last annotation in the project and hold that task for them again."""
    with transaction.atomic():
        last = (
            Annotation.objects.filter(task__project=project, annotator=user)
            .order_by("-created_at", "-id")
            .values_list("pk", "task_id")
            .first()
        )
        if last is None:
            raise AnnotationError("nothing to undo", 409)
        task = Task.objects.select_for_update().get(pk=last[1])
        if task.final_value is not None:
            raise AnnotationError("the task was adjudicated; its annotations are final", 409, task.pk)
        deleted, _ = Annotation.objects.filter(pk=last[0], annotator=user).delete()
        if not deleted:  # another undo of the same annotation won the race
            raise AnnotationError("that annotation was already undone", 409, task.pk)
        task.annotation_count = Annotation.objects.filter(task=task).count()
        task.status = Task.Status.OPEN
        task.save(update_fields=["annotation_count", "status"])
        assignment = Assignment.objects.select_related("task__item").get(task=task, annotator=user)
        assignment.status = Assignment.Status.ACTIVE
        assignment.expires_at = timezone.now() + timedelta(seconds=project.lock_seconds)
        assignment.save(update_fields=["status", "expires_at"])
    return assignment


MAX_IMPORT_RECORDS = 100_000


def import_records(project: Project, user: Any, records: list[dict[str, Any]]) -> int:
    """Add imported texts as tasks, with their labels as final (gold) labels and predictions as suggestions.

    Every record is checked first; one bad record refuses the whole import and nothing is written.
    Returns the number of new tasks.
    """
    from datastore import services as datastore_services

    if role_of(project, user) != Role.MANAGER:
        raise AnnotationError("only a manager of the project can import", 403)
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
        items = datastore_services.import_texts(f"import:{project.name}", [r["text"] for r in records])
        existing = set(Task.objects.filter(project=project).values_list("item_id", flat=True))
        tasks, seen = [], set(existing)
        now = timezone.now()
        for item, record in zip(items, records, strict=True):
            if item.pk in seen:
                continue
            seen.add(item.pk)
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
    from django.conf import settings

    from datastore import services as datastore_services

    if role_of(project, user) != Role.MANAGER:
        raise AnnotationError("only a manager of the project can import", 403)
    if project.task_type != Project.TaskType.IMAGE_CLASSIFICATION:
        raise AnnotationError(f"images are imported into image_classification projects, not {project.task_type}")
    if not files or len(files) > MAX_IMAGE_FILES:
        raise AnnotationError(f"send 1 to {MAX_IMAGE_FILES} image files as multipart fields 'file'")
    store = Path(settings.FSML_HOME) / "files" / "uploads"
    with transaction.atomic():
        try:
            items = datastore_services.import_images(f"import:{project.name}", files, store)
        except datastore_services.ItemError as exc:
            raise AnnotationError(f"{exc.url}: {exc.reason}; nothing imported") from None
        existing = set(Task.objects.filter(project=project).values_list("item_id", flat=True))
        fresh = {item.pk: item for item in items if item.pk not in existing}
        Task.objects.bulk_create((Task(project=project, item=item) for item in fresh.values()), batch_size=1000)
    return len(fresh)


def preannotate(project: Project, model: Any, batch_size: int = 256) -> int:
    """Store a model version's prediction on every open task as a suggestion, with its uncertainty
    (1 - top confidence) for active learning. Runs the verified archive through the shared runtime."""
    from datastore.archive import ArchiveError
    from datastore.modelstore import StoreError
    from datastore.runtime import InputError, load_runtime
    from datastore.services import unpacked_model

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
            predictions += runtime.predict([t.item.text for t in chunk])
        except InputError as exc:
            raise AnnotationError(f"task {chunk[exc.index or 0].pk}: {exc.reason}; nothing was written") from None
    for task, prediction in zip(tasks, predictions, strict=True):
        task.prediction = {**prediction.as_dict(), "model": str(model)}
        task.uncertainty = round(1.0 - prediction.confidence, 6)
    with transaction.atomic():  # every suggestion of this model, or none
        Task.objects.bulk_update(tasks, ["prediction", "uncertainty"], batch_size=1000)
    return len(tasks)
