"""The data manager's reads: a project's tasks filtered, sorted and paged (one task's history: ``history``).

Fast on big projects by construction: a page is found on the task table alone (its filters are ``EXISTS``
subqueries on indexed columns, the sort an index of ``(project, column)``), then the page's fifty rows are read
with their items in one query and their annotations in another, so no query grows with the page and none runs
per row. A task's status is derived, not stored: adjudicated (a final label) before done, then held (a live
assignment), sent back (a relabel request, open again), skipped (someone skipped it), open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Left, Length
from django.utils import timezone

from annotation.agreement import majority_share
from annotation.services.access import AnnotationError, Role, project_for_user, require_role
from datastore.db import estimated_rows, first_pks_checking_exists_per_row
from datastore.models import (
    Annotation,
    Assignment,
    Item,
    Project,
    Question,
    RelabelRequest,
    Source,
    Task,
    TaskLabel,
    label_key,
)
from datastore.services.items import image_file_name

STATUSES = ("open", "held", "done", "skipped", "adjudicated", "sent_back")
# Query value -> the task columns it sorts by; "-" reverses. Confidence is 1 - uncertainty, so "confidence" (least
# confident first) is the most uncertain first. Tasks without a prediction (or an annotation) go last either way.
ORDERS = {
    "id": ("id",),
    "-id": ("-id",),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "uncertainty": ("uncertainty", "id"),
    "-uncertainty": ("-uncertainty", "-id"),
    "confidence": ("-uncertainty", "-id"),
    "-confidence": ("uncertainty", "id"),
    "annotations": ("annotation_count", "id"),
    "-annotations": ("-annotation_count", "-id"),
    "agreement": ("agreement", "id"),
    "-agreement": ("-agreement", "-id"),
}
PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
SEARCH_COUNT_CAP = 10_000
FEW_MATCHES = 1_000  # a search matching at most this many items pages through their ids
EXCERPT = 160
YES, NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
READ_ROLES = (Role.MANAGER, Role.REVIEWER)


@dataclass(frozen=True)
class TaskFilter:
    """What the list shows: each field narrows it; empty fields (the defaults) do not."""

    status: str = ""
    label: str = ""
    annotator: str = ""  # a username: tasks this person annotated
    disagreement: bool = False  # annotations not all equal
    has_question: bool | None = None  # True: a question was asked about the task; False: none
    source: str = ""  # a source's name or id
    q: str = ""  # in the item's text (an image's title: its file name), a case-insensitive substring
    order: str = "id"

    @classmethod
    def from_query(cls, params: Mapping[str, Any]) -> TaskFilter:
        """Read a filter from query parameters (a QueryDict or a plain dict); a bad value is a 400."""

        def text(name: str) -> str:
            value = params.get(name)
            return "" if value is None else str(value).strip()

        def flag(name: str) -> bool | None:
            value = text(name).lower()
            if value in ("", "any"):
                return None
            if value in YES:
                return True
            if value in NO:
                return False
            raise AnnotationError(f"{name} must be yes or no, not {value!r}")

        status, order = text("status"), text("order") or "id"
        if status and status not in STATUSES:
            raise AnnotationError(f"unknown status {status!r}; choose one of {', '.join(STATUSES)}")
        if order not in ORDERS:
            raise AnnotationError(f"unknown order {order!r}; choose one of {', '.join(ORDERS)}")
        return cls(
            status=status,
            label=text("label"),
            annotator=text("annotator"),
            disagreement=bool(flag("disagreement")),
            has_question=flag("has_question"),
            source=text("source"),
            q=text("q")[:200],
            order=order,
        )

    def as_query(self) -> dict[str, str]:
        """The non-default fields as query parameters: ``from_query(f.as_query()) == f``."""
        out = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value == field.default:
                continue
            out[field.name] = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        return out


def readable_project(project_id: int, user: Any) -> Project:
    """The project for its managers and reviewers (and staff): 404 to non-members, 403 to annotators."""
    project = project_for_user(project_id, user)
    if project is None:
        raise AnnotationError("no such project", 404)
    require_role(project, user, *READ_ROLES)
    return project


def held_now() -> Exists:
    live = Assignment.objects.filter(
        task=OuterRef("pk"), status=Assignment.Status.ACTIVE, expires_at__gt=timezone.now()
    )
    return Exists(live)


def skipped_once() -> Exists:
    return Exists(Assignment.objects.filter(task=OuterRef("pk"), status=Assignment.Status.SKIPPED))


def sent_back_once() -> Exists:
    return Exists(RelabelRequest.objects.filter(task=OuterRef("pk")))


def questioned() -> Exists:
    return Exists(Question.objects.filter(task=OuterRef("pk")))


def status_q(status: str) -> Q:
    """The tasks whose derived status is ``status`` (the same precedence as ``status_of``)."""
    unfinished = Q(status=Task.Status.OPEN, final_value__isnull=True)
    if status == "adjudicated":
        return Q(final_value__isnull=False)
    if status == "done":
        return Q(status=Task.Status.DONE, final_value__isnull=True)
    if status == "held":
        return unfinished & Q(held_now())
    if status == "sent_back":
        return unfinished & ~Q(held_now()) & Q(sent_back_once())
    if status == "skipped":
        return unfinished & ~Q(held_now()) & ~Q(sent_back_once()) & Q(skipped_once())
    return unfinished & ~Q(held_now()) & ~Q(sent_back_once()) & ~Q(skipped_once())


def status_of(task_status: str, final_value: Any, held: bool, sent_back: bool, skipped: bool) -> str:
    if final_value is not None:
        return "adjudicated"
    if task_status == Task.Status.DONE:
        return "done"
    if held:
        return "held"
    if sent_back:
        return "sent_back"
    return "skipped" if skipped else "open"


ID_ORDERS = ("id", "-id")


def label_q(project: Project, label: str, join: bool = False) -> Q:
    """Tasks whose final label or any annotation contains ``label`` (a name; a span's label): their ``TaskLabel``
    rows, kept by every writer of either, read on the (project, key, task) index, not every annotation's JSON.

    ``join``: a join on those rows (one per task and label, so no task comes twice) rather than a semi-join: the
    index is in task order, so a page in id order stops at the page (``ordered(by_label=True)``); other orders
    are faster as ``IN`` (the sort's index first, each task's label row looked up).
    """
    if label not in project.labels:
        raise AnnotationError(f"label {label!r} is not in the project's schema {project.labels}")
    key = label_key(label)
    if join:
        return Q(label_rows__project_id=project.pk, label_rows__key=key)
    return Q(pk__in=TaskLabel.objects.filter(project_id=project.pk, key=key).values("task_id"))


def filtered(project: Project, flt: TaskFilter) -> QuerySet[Task]:
    """The project's tasks that pass ``flt``, unordered (``ordered`` sorts them)."""
    tasks = Task.objects.filter(project=project)
    if flt.status:
        tasks = tasks.filter(status_q(flt.status))
    if flt.label:
        tasks = tasks.filter(label_q(project, flt.label, join=flt.order in ID_ORDERS))
    if flt.annotator:
        tasks = tasks.filter(Exists(Annotation.objects.filter(task=OuterRef("pk"), annotator__username=flt.annotator)))
    if flt.disagreement:
        # Task.agreement is kept by every write of annotations (submit, undo, send back): an index range.
        tasks = tasks.filter(agreement__lt=1)
    if flt.has_question is not None:
        tasks = tasks.filter(questioned() if flt.has_question else ~Q(questioned()))
    if flt.source:
        by = Q(name=flt.source) | (Q(pk=int(flt.source)) if flt.source.isdigit() else Q())
        source_ids = list(Source.objects.filter(by).values_list("pk", flat=True))
        tasks = tasks.filter(item__source_id__in=source_ids or [0])
    if flt.q:
        tasks = tasks.filter(**{f"item__{search_field(project)}__icontains": flt.q})
    return tasks


def search_field(project: Project) -> str:
    """The item column a text search reads: an image's file name is its title; a text project searches the text
    only (one scan, not two)."""
    return "title" if project.task_type == Project.TaskType.IMAGE_CLASSIFICATION else "text"


def searched(project: Project, flt: TaskFilter) -> tuple[QuerySet[Task], int, bool]:
    """The tasks of a text search, their count (up to ``SEARCH_COUNT_CAP``) and whether that count is exact.

    A substring has no index, so one of two tables is read whole. When the project holds most of the stored items
    (MariaDB's estimate), the items are read in one pass and only those whose text matches are checked for a task
    of this project passing the other filters: a search that matches nothing costs one read of the items, half the
    time of reading every task and looking up its item. At most ``FEW_MATCHES`` matches then page through their
    item ids (an index range); more page through the join, which finds a page of dense matches in its first rows.
    A project of few of the items reads its tasks and looks up their items, counting up to the cap.
    """
    items = estimated_rows(Item)
    if items is None or items > 2 * Task.objects.filter(project=project).count():
        tasks = filtered(project, flt)
        count = tasks.values("pk")[: SEARCH_COUNT_CAP + 1].count()
        return tasks, min(count, SEARCH_COUNT_CAP), count <= SEARCH_COUNT_CAP
    others = filtered(project, replace(flt, q=""))
    matching = Item.objects.filter(**{f"{search_field(project)}__icontains": flt.q}).filter(
        Exists(others.filter(item_id=OuterRef("pk")))
    )
    item_ids = first_pks_checking_exists_per_row(matching, SEARCH_COUNT_CAP + 1)
    tasks = others.filter(item_id__in=item_ids) if len(item_ids) <= FEW_MATCHES else filtered(project, flt)
    return tasks, min(len(item_ids), SEARCH_COUNT_CAP), len(item_ids) <= SEARCH_COUNT_CAP


def ordered(tasks: QuerySet[Task], order: str, by_label: bool = False) -> QuerySet[Task]:
    """``tasks`` sorted by ``order``; ``by_label``: they are joined to their label rows (``label_q(join=True)``),
    whose index is in task order, so id order reads it (``label_rows__task``) instead of sorting every match."""
    columns = []
    for column in ORDERS[order]:
        name = column.lstrip("-")
        if name == "id" and by_label:
            name = "label_rows__task"
        if name in ("uncertainty", "agreement"):  # tasks with no prediction (or annotation) last, whichever way
            columns.append(F(name).desc(nulls_last=True) if column[0] == "-" else F(name).asc(nulls_last=True))
        else:
            columns.append(F(name).desc() if column[0] == "-" else F(name).asc())
    return tasks.order_by(*columns)


@dataclass(frozen=True)
class TaskPage:
    count: int
    page: int
    page_size: int
    rows: list[dict[str, Any]]
    count_is_exact: bool = True  # False: a text search matched more than SEARCH_COUNT_CAP tasks

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.count / self.page_size))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"pages": self.pages}


def page_size_of(value: Any) -> int:
    if value in (None, ""):
        return PAGE_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise AnnotationError(f"page_size must be a whole number, not {value!r}") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise AnnotationError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return size


def page_of(value: Any, pages: int) -> int:
    """The page number asked for, within 1..pages (a number past the end gives the last page)."""
    try:
        return min(max(1, int(value or 1)), pages)
    except (TypeError, ValueError):
        raise AnnotationError(f"page must be a whole number, not {value!r}") from None


def list_tasks(project: Project, flt: TaskFilter, page: Any = 1, page_size: Any = None) -> TaskPage:
    """One page of the tasks ``flt`` selects, in its order, each row with its item, annotations and status.

    A text search counts up to ``SEARCH_COUNT_CAP`` matches (``count_is_exact`` says whether it stopped).
    Four queries whatever the page: the count, the page's ids (the task table alone, so a deep page skips
    index entries, not joined rows), the rows with their items, and their annotations.
    """
    size = page_size_of(page_size)
    if flt.q:
        tasks, count, exact = searched(project, flt)
    else:
        tasks = filtered(project, flt)
        count, exact = tasks.count(), True
    number = page_of(page, max(1, math.ceil(count / size)))
    start = (number - 1) * size
    page_ids = ordered(tasks, flt.order, by_label=bool(flt.label) and flt.order in ID_ORDERS).values_list(
        "pk", flat=True
    )
    ids = list(page_ids[start : start + size]) if count else []
    return TaskPage(count=count, page=number, page_size=size, rows=rows_for(ids), count_is_exact=exact)


def rows_for(ids: list[int]) -> list[dict[str, Any]]:
    """The list rows of these tasks, in this order."""
    found = (
        Task.objects.filter(pk__in=ids)
        .annotate(
            excerpt=Left("item__text", EXCERPT),
            text_length=Length("item__text"),
            held=held_now(),
            skipped=skipped_once(),
            sent_back=sent_back_once(),
            has_question=questioned(),
        )
        .values(
            "id",
            "status",
            "final_value",
            "annotation_count",
            "prediction",
            "uncertainty",
            "split",
            "created_at",
            "item_id",
            "item__kind",
            "item__title",
            "item__canonical_url",
            "item__image",
            "item__content_hash",
            "item__source__name",
            "excerpt",
            "text_length",
            "held",
            "skipped",
            "sent_back",
            "has_question",
        )
    )
    by_id = {row["id"]: row for row in found}
    answers: dict[int, list[dict[str, Any]]] = {pk: [] for pk in ids}
    for a in (
        Annotation.objects.filter(task_id__in=ids)
        .order_by("id")
        .values("task_id", "annotator__username", "value", "created_at")
    ):
        answers[a["task_id"]].append(
            {"annotator": a["annotator__username"], "value": a["value"], "at": a["created_at"]}
        )
    return [row_of(by_id[pk], answers[pk]) for pk in ids if pk in by_id]


def row_of(r: dict[str, Any], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    uncertainty = r["uncertainty"]
    return {
        "id": r["id"],
        "status": status_of(r["status"], r["final_value"], r["held"], r["sent_back"], r["skipped"]),
        "final_value": r["final_value"],
        "annotation_count": len(annotations),
        "annotations": annotations,
        "annotators": [a["annotator"] for a in annotations],
        "agreement": majority_share([a["value"] for a in annotations]),
        "prediction": r["prediction"],
        "confidence": None if uncertainty is None else round(1 - uncertainty, 4),
        "has_question": r["has_question"],
        "split": r["split"],
        "created_at": r["created_at"],
        "item": {
            "id": r["item_id"],
            "kind": r["item__kind"],
            "excerpt": r["excerpt"] + ("…" if (r["text_length"] or 0) > EXCERPT else ""),
            "title": r["item__title"],
            "url": r["item__canonical_url"],
            "file_name": image_file_name(r["item__title"], r["item__image"]),
            "content_hash": r["item__content_hash"],
            "source": r["item__source__name"],
            "image": f"/api/items/{r['item_id']}/image/" if r["item__image"] else None,
        },
    }
