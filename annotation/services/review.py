"""Review: disagreements, adjudication, agreement and progress dashboards, and the question board."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import PurePath
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, Max, Min, QuerySet
from django.urls import reverse
from django.utils import timezone

from annotation.agreement import agreement
from annotation.services.access import AnnotationError, Role, require_role
from annotation.services.guidelines import add_answer_to_guidelines
from annotation.validation import InvalidLabel, clean_value
from datastore.models import Annotation, Assignment, Project, Question, Task, TaskLabel
from datastore.services.items import image_file_name
from datastore.snapshot import final_label


def disagreements(project: Project) -> list[dict[str, Any]]:
    """Finished, not yet adjudicated tasks whose annotators gave different labels.

    Each row: ``{"task", "text", "image" (the item's image URL or None), "annotations"}``.
    """
    values: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = Annotation.objects.filter(
        task__project=project, task__status=Task.Status.DONE, task__final_value__isnull=True
    ).values("task_id", "annotator__username", "value")
    for row in rows.order_by("task_id", "id"):
        values[row["task_id"]].append({"annotator": row["annotator__username"], "value": row["value"]})
    out = []
    tasks = Task.objects.filter(pk__in=values).select_related("item").order_by("id")
    for task in tasks:
        answers = values[task.pk]
        if len({json.dumps(a["value"], sort_keys=True) for a in answers}) > 1:
            image = reverse("api-item-image", args=[task.item_id]) if task.item.image else None
            out.append({"task": task.pk, "text": task.item.text, "image": image, "annotations": answers})
    return out


def adjudicate(task_id: int, reviewer: Any, value: Any, override: bool = False) -> Task:
    """Set a task's final label (a reviewer's or manager's decision); changing an existing one needs
    ``override``, so two reviewers cannot silently overwrite each other."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise AnnotationError("no such task", 404, task_id)
        project = Project.objects.get(pk=task.project_id)
        require_role(project, reviewer, Role.REVIEWER, Role.MANAGER)
        if task.final_value is not None and not override:
            raise AnnotationError("the task already has a final label; send override to change it", 409, task_id)
        try:
            task.final_value = clean_value(
                project.task_type, project.labels, value, task.item.text, project.allow_overlapping_spans
            )
        except InvalidLabel as exc:
            raise AnnotationError(exc.reason, 400, task_id) from None
        task.adjudicated_by, task.adjudicated_at = reviewer, timezone.now()
        task.save(update_fields=["final_value", "adjudicated_by", "adjudicated_at"])
        TaskLabel.refresh([task.pk])  # the data manager's label filter
    return task


def project_agreement(project: Project) -> dict[str, Any]:
    rows = Annotation.objects.filter(task__project=project).values(
        "task_id", "annotator__username", "value", "task__item__text"
    )
    annotations = [
        {
            "task": r["task_id"],
            "annotator": r["annotator__username"],
            "value": r["value"],
            "text": r["task__item__text"],
        }
        for r in rows.iterator()
    ]
    return agreement(project.task_type, project.labels, annotations)


def dashboard(project: Project) -> dict[str, Any]:
    """Progress and throughput per annotator."""
    tasks = Task.objects.filter(project=project)
    done = tasks.filter(status=Task.Status.DONE).count()
    per_annotator = []
    stats = (
        Annotation.objects.filter(task__project=project)
        .values("annotator__username")
        .annotate(n=Count("id"), mean_seconds=Avg("lead_time"), first=Min("created_at"), last=Max("created_at"))
        .order_by("annotator__username")
    )
    for row in stats:
        hours = max((row["last"] - row["first"]).total_seconds() / 3600, 1 / 60)
        per_annotator.append(
            {
                "annotator": row["annotator__username"],
                "annotations": row["n"],
                "mean_seconds": round(row["mean_seconds"] or 0, 2),
                "per_hour": round(row["n"] / hours, 1),
            }
        )
    skips = Assignment.objects.filter(task__project=project, status=Assignment.Status.SKIPPED).count()
    return {
        "tasks": tasks.count(),
        "done": done,
        "adjudicated": tasks.filter(final_value__isnull=False).count(),
        "annotations": sum(r["annotations"] for r in per_annotator),
        "skipped": skips,
        "per_annotator": per_annotator,
    }


def export_rows(project: Project, tasks: QuerySet[Task] | None = None) -> list[dict[str, Any]]:
    """Every task with its annotations and its final label (adjudicated, else the majority), in id order.

    ``tasks`` (a queryset of the project's tasks) restricts the rows to a selection. Image tasks carry
    ``file_name`` (the imported file's name), ``image`` (the file's path inside an export folder,
    ``images/<content hash><suffix>``) and ``image_file`` (the stored file, to copy into an archive).
    """
    selected = Task.objects.filter(project=project)
    if tasks is not None:
        selected = selected.filter(pk__in=tasks.filter(project=project).values("pk"))
    values: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in (
        Annotation.objects.filter(task__in=selected.values("pk"))
        .order_by("id")
        .values("task_id", "annotator__username", "value")
    ):
        values[row["task_id"]].append({"annotator": row["annotator__username"], "value": row["value"]})
    rows: list[dict[str, Any]] = []
    for task in selected.select_related("item").order_by("id").iterator(2000):
        answers = values.get(task.pk, [])
        label = task.final_value
        if label is None and answers:
            label = final_label([a["value"] for a in answers])
        item = task.item
        out: dict[str, Any] = {
            "id": task.pk,
            "text": item.text,
            "label": label,
            "annotations": answers,
            "final": task.final_value,
            "split": task.split,
            "content_hash": item.content_hash,
        }
        if item.image:
            out["file_name"] = image_file_name(item.title, item.image)
            out["image"] = f"images/{item.content_hash}{PurePath(item.image).suffix.lower()}"
            out["image_file"] = item.image
        rows.append(out)
    return rows


def ask(project: Project, user: Any, text: str, task_id: int | None = None) -> Question:
    require_role(project, user, Role.ANNOTATOR, Role.REVIEWER, Role.MANAGER)
    text = (text or "").strip()
    if not text:
        raise AnnotationError("a question needs some text")
    if task_id is not None and not isinstance(task_id, int):
        raise AnnotationError("task must be a task id")
    task = Task.objects.filter(pk=task_id, project=project).first() if task_id else None
    if task_id and task is None:
        raise AnnotationError("no such task in this project", 404, task_id)
    return Question.objects.create(project=project, task=task, asked_by=user, text=text)


def answer(question: Question, manager: Any, text: str, add_to_guidelines: bool = False) -> Question:
    """A manager's or reviewer's answer; with ``add_to_guidelines`` it also becomes a guideline entry (a new
    guideline version), in the same transaction."""
    require_role(question.project, manager, Role.MANAGER, Role.REVIEWER)
    if not (text or "").strip():
        raise AnnotationError("an answer needs some text")
    with transaction.atomic():
        locked = Question.objects.select_for_update().select_related("project").get(pk=question.pk)
        locked.answer, locked.answered_by, locked.answered_at = text.strip(), manager, timezone.now()
        locked.save(update_fields=["answer", "answered_by", "answered_at"])
        if add_to_guidelines:
            add_answer_to_guidelines(locked, manager)
    return locked
