"""Send a labelled task back to the annotation queue for re-labelling (a label error found in evaluation, say).

The task reopens as if new: its annotations, assignments and adjudicated label are moved into a
``RelabelRequest`` (nothing is lost: who labelled what, when, and the reason it came back), so anyone,
its first annotators included, may label it again, and the next snapshot takes the new label.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from annotation.services.access import AnnotationError, Role, project_for_user, require_role
from datastore.db import retry_deadlocks
from datastore.models import Assignment, Prediction, RelabelRequest, Task, TaskLabel

MAX_REASON = 500


def pending(task: Task) -> RelabelRequest | None:
    """The task's latest request while the task is still open again (not yet re-labelled)."""
    if task.status != Task.Status.OPEN:
        return None
    return RelabelRequest.objects.filter(task=task).order_by("-created_at").first()


@retry_deadlocks()
def send_back(task_id: int, user: Any, reason: str, prediction: Prediction | None = None) -> RelabelRequest:
    """Reopen a task for re-labelling; managers and reviewers of its project (and staff) may.

    Raises:
        AnnotationError: no such task (404), not allowed (403), no reason or one too long (400), or the task
            is still open: it was never labelled or was already sent back (409). Nothing is written then.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise AnnotationError(f"sending a task back needs a reason of 1 to {MAX_REASON} characters", 400, task_id)
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        project = project_for_user(task.project_id, user) if task is not None else None
        if task is None or project is None:
            raise AnnotationError("no such task", 404, task_id)
        require_role(project, user, Role.MANAGER, Role.REVIEWER)
        if task.status == Task.Status.OPEN and task.final_value is None:
            already = RelabelRequest.objects.filter(task=task).exists()
            why = "it was already sent back and is waiting in the queue" if already else "it is not fully labelled yet"
            raise AnnotationError(f"this task is open: {why}", 409, task_id)
        annotations = list(task.annotations.order_by("created_at"))
        assignments = list(Assignment.objects.filter(task=task).order_by("assigned_at"))
        previous = {
            "status": task.status,
            "final_value": task.final_value,
            "adjudicated_by": task.adjudicated_by_id,
            "adjudicated_at": task.adjudicated_at.isoformat() if task.adjudicated_at else None,
            "annotations": [
                {
                    "annotator": a.annotator_id,
                    "value": a.value,
                    "lead_time": a.lead_time,
                    "created_at": a.created_at.isoformat(),
                }
                for a in annotations
            ],
            "assignments": [
                {
                    "annotator": a.annotator_id,
                    "status": a.status,
                    "skip_reason": a.skip_reason,
                    "assigned_at": a.assigned_at.isoformat(),
                }
                for a in assignments
            ],
        }
        request = RelabelRequest.objects.create(
            task=task, prediction=prediction, requested_by=user, reason=reason, previous=previous
        )
        task.annotations.all().delete()
        Assignment.objects.filter(task=task).delete()
        task.status, task.annotation_count, task.agreement = Task.Status.OPEN, 0, None
        task.final_value, task.adjudicated_by, task.adjudicated_at = None, None, None
        task.save(
            update_fields=["status", "annotation_count", "agreement", "final_value", "adjudicated_by", "adjudicated_at"]
        )
        TaskLabel.refresh([task.pk])  # no annotation and no final label left: no label rows
    return request
