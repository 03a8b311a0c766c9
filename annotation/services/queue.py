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

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.agreement import majority_share
from annotation.services.access import AnnotationError, project_for_user
from annotation.services.guidelines import current_guideline_version
from annotation.validation import InvalidLabel, clean_value
from datastore.db import retry_deadlocks
from datastore.models import Annotation, Assignment, Item, Project, Task, TaskLabel

MAX_SKIP_REASON = 500


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


def _held(project: Project, user: Any, now: Any) -> QuerySet[Assignment]:
    """The tasks ``user`` holds in ``project``, oldest hold first, with their items."""
    return (
        Assignment.objects.filter(
            task__project=project, annotator=user, status=Assignment.Status.ACTIVE, expires_at__gt=now
        )
        .select_related("task__item")  # the payload shows the task's item: no second and third query
        .order_by("assigned_at", "id")
    )


@retry_deadlocks()
def next_task(project: Project, user: Any) -> Assignment | None:
    """Hand ``user`` the next task of ``project`` and hold it for them (``project.lock_seconds``).

    A task the user already holds comes back first. Returns None when nothing is left for this user.
    """
    now = timezone.now()
    with transaction.atomic():
        held = _held(project, user, now).first()
        return held if held is not None else _take_new(project, user, now)


@retry_deadlocks()
def _take_one(project: Project, user: Any) -> Assignment | None:
    with transaction.atomic():
        return _take_new(project, user, timezone.now())


def next_tasks(project: Project, user: Any, count: int) -> list[Assignment]:
    """Up to ``count`` tasks held for ``user`` at once (the grid of thumbnails): the tasks they hold first,
    then new ones, each taken in its own short transaction as ``next_task`` takes one.

    The page is read back from the holds at the end: a task the same user was handed meanwhile by another
    request (the one-at-a-time view fetching its next task as the grid opens) is theirs, never taken again
    for them, and must be on the page rather than held out of sight until its hold expires.
    """
    held = _held(project, user, timezone.now())[:count].count()
    while held < count:
        if _take_one(project, user) is None:
            break
        held += 1
    return list(_held(project, user, timezone.now())[:count])


def _take_new(project: Project, user: Any, now: Any) -> Assignment | None:
    """Hold a task ``user`` has never had (inside the caller's transaction); None when none is left."""
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
                task=task,
                annotator=user,
                value=value,
                lead_time=max(0.0, float(lead_time)),
                guideline_version=current_guideline_version(project, user),  # the version the annotator saw
            )
        except IntegrityError:  # leaves the transaction with the error: everything is rolled back
            raise AnnotationError("you already annotated this task", 409, task_id) from None
        assignment.status = Assignment.Status.SUBMITTED
        assignment.save(update_fields=["status"])
        task.annotation_count += 1
        if task.annotation_count >= project.overlap:
            task.status = Task.Status.DONE
        task.agreement = majority_share(list(Annotation.objects.filter(task=task).values_list("value", flat=True)))
        task.save(update_fields=["annotation_count", "status", "agreement"])
        TaskLabel.refresh([task.pk])  # the data manager's label filter
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


@dataclass(frozen=True)
class Undone:
    """What an undo gives back: the task, held for the annotator again, and the answer they had given."""

    assignment: Assignment
    value: Any


def undo(project: Project, user: Any) -> Undone:
    """Take back the user's last annotation in the project and hold that task for them again; the taken-back
    answer comes with it, so the page can show it selected for the annotator to change."""
    with transaction.atomic():
        last = (
            Annotation.objects.filter(task__project=project, annotator=user)
            .order_by("-created_at", "-id")
            .values_list("pk", "task_id", "value")
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
        # A manager may have lowered the overlap meanwhile: the others' labels can still be enough.
        done = task.annotation_count >= project.overlap
        task.status = Task.Status.DONE if done else Task.Status.OPEN
        task.agreement = majority_share(list(Annotation.objects.filter(task=task).values_list("value", flat=True)))
        task.save(update_fields=["annotation_count", "status", "agreement"])
        TaskLabel.refresh([task.pk])  # the data manager's label filter
        assignment = Assignment.objects.select_related("task__item").get(task=task, annotator=user)
        assignment.status = Assignment.Status.ACTIVE
        assignment.expires_at = timezone.now() + timedelta(seconds=project.lock_seconds)
        assignment.save(update_fields=["status", "expires_at"])
    return Undone(assignment, last[2])
