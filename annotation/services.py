"""Every write of the annotation workflow: projects, task assignment and submitted labels."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from datastore.models import Annotation, Item, Project, Task

LOCK_SECONDS = 300


class AnnotationError(Exception):
    """A submission that cannot be accepted; ``status`` is the HTTP status it maps to."""

    def __init__(self, reason: str, status: int = 400, task_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.task_id = reason, status, task_id


def create_project(
    name: str,
    task_type: str,
    labels: list[str],
    items: Iterable[Item] | QuerySet[Item],
    overlap: int = 1,
    guidelines: str = "",
    members: Iterable[Any] = (),
) -> Project:
    """Create a project and one task per item, in one transaction."""
    if not labels or len(set(labels)) != len(labels):
        raise AnnotationError("labels must be a non-empty list of distinct names")
    if overlap < 1:
        raise AnnotationError("overlap must be at least 1")
    with transaction.atomic():
        project = Project.objects.create(
            name=name, task_type=task_type, labels=list(labels), overlap=overlap, guidelines=guidelines
        )
        project.members.add(*members)
        Task.objects.bulk_create((Task(project=project, item=item) for item in items), batch_size=1000)
    return project


def next_task(project: Project, user: Any, lock_seconds: int = LOCK_SECONDS) -> Task | None:
    """Hand ``user`` the next open task of ``project`` and lock it for them.

    The row lock (``SELECT ... FOR UPDATE SKIP LOCKED`` on MySQL; a write transaction on SQLite) makes
    two annotators asking at once get different tasks. A task the user already holds is handed back.
    """
    now = timezone.now()
    with transaction.atomic():
        held = (
            Task.objects.filter(project=project, locked_by=user, locked_until__gt=now, status=Task.Status.OPEN)
            .order_by("id")
            .first()
        )
        if held is not None:
            return held
        candidates = (
            Task.objects.select_for_update(skip_locked=True)
            .filter(project=project, status=Task.Status.OPEN)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .exclude(annotations__annotator=user)
            .order_by("id")
        )
        task = candidates.first()
        if task is None:
            return None
        task.locked_by, task.locked_until = user, now + timedelta(seconds=lock_seconds)
        task.save(update_fields=["locked_by", "locked_until"])
        return task


def validate_value(project: Project, value: Any) -> Any:
    """Check a label against the project's schema."""
    if project.task_type in (Project.TaskType.TEXT_CLASSIFICATION, Project.TaskType.IMAGE_CLASSIFICATION):
        if value not in project.labels:
            raise AnnotationError(f"label {value!r} is not in the project's schema {project.labels}")
        return value
    if project.task_type == Project.TaskType.MULTI_LABEL:
        if not isinstance(value, list) or not set(value) <= set(project.labels):
            raise AnnotationError(f"labels {value!r} must be a list drawn from {project.labels}")
        return sorted(set(value))
    raise AnnotationError(f"task type {project.task_type} is not supported yet", status=501)


def submit(task_id: int, user: Any, value: Any, lead_time: float = 0.0) -> Annotation:
    """Record ``user``'s label for a task. Refuses labels outside the schema, double submits and
    submissions to finished tasks; nothing is written when it refuses."""
    with transaction.atomic():
        try:
            task = Task.objects.select_for_update().select_related("project").get(pk=task_id)
        except Task.DoesNotExist:
            raise AnnotationError("no such task", status=404, task_id=task_id) from None
        value = validate_value(task.project, value)
        if task.status == Task.Status.DONE:
            raise AnnotationError("task already has all its annotations", status=409, task_id=task_id)
        if task.locked_by_id not in (None, user.pk) and task.locked_until and task.locked_until > timezone.now():
            raise AnnotationError("task is assigned to another annotator", status=409, task_id=task_id)
        try:
            with transaction.atomic():
                annotation = Annotation.objects.create(
                    task=task, annotator=user, value=value, lead_time=max(0.0, float(lead_time))
                )
        except IntegrityError:
            raise AnnotationError("you already annotated this task", status=409, task_id=task_id) from None
        task.annotation_count += 1
        if task.annotation_count >= task.project.overlap:
            task.status = Task.Status.DONE
        task.locked_by, task.locked_until = None, None
        task.save(update_fields=["annotation_count", "status", "locked_by", "locked_until"])
    return annotation
