"""One task as the data manager shows it: its item and everything that happened to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation.agreement import majority_share
from annotation.datamanager.services import READ_ROLES, status_of
from annotation.payloads import item_payload
from annotation.services.access import AnnotationError, project_for_user, require_role
from datastore.models import Assignment, Task


def task_detail(task_id: int, user: Any) -> dict[str, Any]:
    """One task with everything that happened to it, for its project's managers and reviewers.

    Undo leaves no row (the annotation is deleted and the hold given back), so the history shows what is stored:
    annotations (with their guideline version), assignments (held, skipped with the reason, submitted),
    the adjudication, relabel requests (who, why, and what the task had before) and questions with answers.
    """
    task = Task.objects.select_related("item__source", "item__crawl_job", "adjudicated_by").filter(pk=task_id).first()
    project = project_for_user(task.project_id, user) if task is not None else None
    if task is None or project is None:
        raise AnnotationError("no such task", 404, task_id)
    require_role(project, user, *READ_ROLES)
    item, now = task.item, timezone.now()
    annotations = [
        {
            "annotator": a.annotator.username,
            "value": a.value,
            "lead_time": a.lead_time,
            "guideline_version": a.guideline_version.number if a.guideline_version else None,
            "at": a.created_at,
        }
        for a in task.annotations.select_related("annotator", "guideline_version").order_by("created_at", "id")
    ]
    assignments = [
        {
            "annotator": a.annotator.username,
            "status": "held" if a.status == Assignment.Status.ACTIVE and a.expires_at > now else a.status,
            "skip_reason": a.skip_reason,
            "at": a.assigned_at,
            "expires_at": a.expires_at,
        }
        for a in task.assignments.select_related("annotator").order_by("assigned_at", "id")
    ]
    relabels = [
        {"by": r.requested_by.username, "reason": r.reason, "previous": r.previous, "at": r.created_at}
        for r in task.relabel_requests.select_related("requested_by").order_by("created_at", "id")
    ]
    earlier = [(a, r) for r in relabels for a in r["previous"].get("annotations", [])]  # moved there by send_back
    names = dict(
        get_user_model().objects.filter(pk__in={a["annotator"] for a, _ in earlier}).values_list("pk", "username")
    )
    questions = [
        {
            "id": q.pk,
            "by": q.asked_by.username,
            "text": q.text,
            "answer": q.answer,
            "answered_by": q.answered_by.username if q.answered_by else None,
            "answered_at": q.answered_at,
            "at": q.created_at,
        }
        for q in task.questions.select_related("asked_by", "answered_by").order_by("created_at", "id")
    ]
    adjudication = (
        {
            "value": task.final_value,
            "by": task.adjudicated_by.username if task.adjudicated_by else None,
            "at": task.adjudicated_at,
        }
        if task.final_value is not None
        else None
    )
    held = any(a["status"] == "held" for a in assignments)
    skipped = any(a["status"] == Assignment.Status.SKIPPED for a in assignments)
    history = sorted(
        [{"at": a["at"], "event": "annotated", "who": a["annotator"], "what": a["value"]} for a in annotations]
        + [
            {"at": a["at"], "event": f"assigned ({a['status']})", "who": a["annotator"], "what": a["skip_reason"]}
            for a in assignments
        ]
        + [{"at": r["at"], "event": "sent back", "who": r["by"], "what": r["reason"]} for r in relabels]
        + [
            {
                "at": datetime.fromisoformat(a["created_at"]),
                "event": "annotated (before it was sent back)",
                "who": names.get(a["annotator"], a["annotator"]),
                "what": a["value"],
            }
            for a, _ in earlier
            if a.get("created_at")
        ]
        + [{"at": q["at"], "event": "asked", "who": q["by"], "what": q["text"]} for q in questions]
        + [
            {"at": q["answered_at"], "event": "answered", "who": q["answered_by"], "what": q["answer"]}
            for q in questions
            if q["answered_at"]
        ]
        + (
            [{"at": adjudication["at"], "event": "adjudicated", "who": adjudication["by"], "what": task.final_value}]
            if adjudication and adjudication["at"]
            else []
        ),
        key=lambda e: e["at"],
    )
    return {
        "id": task.pk,
        "project": project.pk,
        "status": status_of(task.status, task.final_value, held, bool(relabels), skipped),
        "prediction": task.prediction,
        "confidence": None if task.uncertainty is None else round(1 - task.uncertainty, 4),
        "agreement": majority_share([a["value"] for a in annotations]),
        "split": task.split,
        "created_at": task.created_at,
        "item": item_payload(item)
        | {"source": item.source.name, "crawl_job": item.crawl_job_id, "fetched_at": item.fetched_at},
        "annotations": annotations,
        "assignments": assignments,
        "adjudication": adjudication,
        "relabel_requests": relabels,
        "questions": questions,
        "history": history,
    }
