"""Bulk actions of the data manager on a selection (task ids) or on every task a filter matches.

Each action is all or nothing: it is refused whole, before anything is written, when the user's role may not
do it (reviewers send back, adjudicate and export; only managers remove tasks), when a selected id is not a task
of the project, or when its input is bad; otherwise it runs in one transaction. Tasks of the selection an action
does not apply to (an unlabelled task cannot be sent back, a held or labelled one is not removed) are left as
they are and counted in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from annotation import formats
from annotation.datamanager.services import TaskFilter, filtered, held_now, sent_back_once
from annotation.services import relabel, review
from annotation.services.access import AnnotationError, Role, require_role
from annotation.validation import InvalidLabel, clean_value
from datastore.db import retry_deadlocks
from datastore.models import Annotation, Project, Task

ROLES: dict[str, tuple[str, ...]] = {
    "send_back": (Role.MANAGER, Role.REVIEWER),
    "adjudicate": (Role.MANAGER, Role.REVIEWER),
    "remove_unlabelled": (Role.MANAGER,),
    "export": (Role.MANAGER, Role.REVIEWER),
}
ACTIONS = tuple(ROLES)
MAX_WRITES = 5000  # tasks one send-back or adjudication may change: each is its own locked read and write
MAX_IDS = 100_000


@dataclass
class BulkResult:
    """What an action did: ``done`` tasks changed (or exported), ``left`` the others by reason."""

    action: str
    selected: int
    done: int = 0
    left: dict[str, int] = field(default_factory=dict)
    payload: bytes | None = None
    content_type: str = ""
    file_name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "selected": self.selected, "done": self.done, "left": self.left}

    def message(self) -> str:
        verbs = {
            "send_back": "sent back",
            "adjudicate": "adjudicated",
            "remove_unlabelled": "removed",
            "export": "exported",
        }
        left = "; ".join(f"{n} left: {why}" for why, n in self.left.items() if n)
        return f"{self.done} of {self.selected} task(s) {verbs[self.action]}" + (f" ({left})." if left else ".")


def selection(project: Project, ids: list[Any] | None, flt: TaskFilter | None) -> QuerySet[Task]:
    """The tasks chosen: ``ids`` (every one a task of ``project``) or what ``flt`` matches; refused when empty."""
    if (ids is None) == (flt is None):
        raise AnnotationError("choose the tasks: send either ids or a filter")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise AnnotationError("ids must be a list of task ids")
        if len(ids) > MAX_IDS:
            raise AnnotationError(f"at most {MAX_IDS} ids at once; use a filter for more")
        wanted = set(ids)
        found = set(Task.objects.filter(project=project, pk__in=wanted).values_list("pk", flat=True))
        foreign = sorted(wanted - found)
        if foreign:
            raise AnnotationError(
                f"{len(foreign)} of the selected tasks are not tasks of project {project.name!r}; nothing was done",
                403,
                errors=foreign[:50],
            )
        tasks = Task.objects.filter(project=project, pk__in=found)
    else:
        assert flt is not None
        tasks = filtered(project, flt)
    if not tasks.exists():
        raise AnnotationError("the selection matches no task; nothing was done")
    return tasks


@retry_deadlocks()
def run(
    project: Project,
    user: Any,
    action: str,
    ids: list[Any] | None = None,
    flt: TaskFilter | None = None,
    params: dict[str, Any] | None = None,
) -> BulkResult:
    """Run ``action`` on the selection, whole or not at all.

    Params: ``reason`` (send_back), ``value`` and ``override`` (adjudicate), ``format`` (export).

    Raises:
        AnnotationError: an unknown action or bad params (400), a role that may not (403), ids that are not the
            project's (403), an empty selection (400), too many tasks to change at once (400).
    """
    if action not in ROLES:
        raise AnnotationError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    require_role(project, user, *ROLES[action])
    params = params or {}
    with transaction.atomic():
        tasks = selection(project, ids, flt)
        ids_now = list(tasks.order_by("pk").values_list("pk", flat=True))
        result = BulkResult(action, len(ids_now))
        if action == "send_back":
            _send_back(project, user, ids_now, params, result)
        elif action == "adjudicate":
            _adjudicate(project, user, ids_now, params, result)
        elif action == "remove_unlabelled":
            _remove(ids_now, result)
        else:
            _export(project, ids_now, params, result)
    return result


def _limit(n: int, what: str) -> None:
    if n > MAX_WRITES:
        raise AnnotationError(f"{n} tasks to {what}: at most {MAX_WRITES} at once; narrow the filter")


def _send_back(project: Project, user: Any, ids: list[int], params: dict[str, Any], result: BulkResult) -> None:
    reason = str(params.get("reason") or "").strip()
    if not reason or len(reason) > relabel.MAX_REASON:
        raise AnnotationError(f"sending tasks back needs a reason of 1 to {relabel.MAX_REASON} characters")
    labelled = Q(status=Task.Status.DONE) | Q(final_value__isnull=False)
    eligible = list(Task.objects.filter(pk__in=ids).filter(labelled).order_by("pk").values_list("pk", flat=True))
    _limit(len(eligible), "send back")
    for task_id in eligible:
        relabel.send_back(task_id, user, reason)
    result.done, result.left = len(eligible), {"not labelled yet": len(ids) - len(eligible)}


def _adjudicate(project: Project, user: Any, ids: list[int], params: dict[str, Any], result: BulkResult) -> None:
    if project.task_type == Project.TaskType.SPANS:
        raise AnnotationError("span labels depend on each text: adjudicate span tasks one at a time")
    try:
        value = clean_value(project.task_type, project.labels, params.get("value"))
    except InvalidLabel as exc:
        raise AnnotationError(exc.reason) from None
    override = bool(params.get("override"))
    targets = Task.objects.filter(pk__in=ids)
    if not override:
        targets = targets.filter(final_value__isnull=True)
    eligible = list(targets.order_by("pk").values_list("pk", flat=True))
    _limit(len(eligible), "adjudicate")
    for task_id in eligible:
        review.adjudicate(task_id, user, value, override=override)
    result.done, result.left = len(eligible), {"already adjudicated": len(ids) - len(eligible)}


def _remove(ids: list[int], result: BulkResult) -> None:
    """Delete the tasks of the selection nobody has labelled, held or sent back (their history stays)."""
    locked = list(Task.objects.select_for_update().filter(pk__in=ids).values_list("pk", flat=True))
    annotated = Exists(Annotation.objects.filter(task=OuterRef("pk")))
    base = Task.objects.filter(pk__in=locked)
    labelled = set(
        base.filter(Q(annotation_count__gt=0) | Q(final_value__isnull=False) | Q(annotated)).values_list(
            "pk", flat=True
        )
    )
    rest = base.exclude(pk__in=labelled)
    held = set(rest.filter(held_now()).values_list("pk", flat=True))
    sent = set(rest.exclude(pk__in=held).filter(sent_back_once()).values_list("pk", flat=True))
    removable = [pk for pk in locked if pk not in labelled | held | sent]
    for start in range(0, len(removable), 2000):
        Task.objects.filter(pk__in=removable[start : start + 2000]).delete()
    result.done = len(removable)
    result.left = {"labelled": len(labelled), "held by an annotator": len(held), "sent back (history kept)": len(sent)}


def _export(project: Project, ids: list[int], params: dict[str, Any], result: BulkResult) -> None:
    fmt = str(params.get("format") or "")
    if fmt not in formats.FORMATS:
        raise AnnotationError(f"unknown export format {fmt!r}; choose one of {', '.join(formats.FORMATS)}")
    rows = review.export_rows(project, tasks=Task.objects.filter(pk__in=ids))
    try:
        result.payload, result.content_type = formats.export(fmt, project.task_type, rows)
    except formats.ImportFormatError as exc:
        raise AnnotationError(str(exc)) from None
    result.done = len(rows)
    result.file_name = f"{project.name}-selection.{formats.EXTENSIONS[fmt]}"
