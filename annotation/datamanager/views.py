"""The data manager's pages: the task table (filters, sorting, pages, selection, bulk actions) and one task.

Managers and reviewers of the project see them (403 to its annotators, 404 to everyone else); every write is
``annotation.datamanager.bulk.run``, the same as the API's.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from annotation import formats
from annotation.datamanager import bulk
from annotation.datamanager.history import task_detail
from annotation.datamanager.services import ORDERS, STATUSES, TaskFilter, list_tasks, readable_project
from annotation.services import AnnotationError, Role, role_of
from datastore.models import Project, Source

# Column headers that sort: (label, ascending order value); the descending one is the same with a "-".
SORTABLE = {"id": "id", "created": "created", "confidence": "confidence", "annotations": "annotations"}
ORDER_NAMES = {
    "id": "task id",
    "-id": "task id, newest first",
    "created": "created",
    "-created": "created, newest first",
    "uncertainty": "uncertainty, least first",
    "-uncertainty": "uncertainty, most first",
    "confidence": "confidence, least first",
    "-confidence": "confidence, most first",
    "annotations": "annotations, fewest first",
    "-annotations": "annotations, most first",
    "agreement": "agreement, least first",
    "-agreement": "agreement, most first",
}


def shown(value: Any) -> str:
    """A label as people read it: a name, names, or spans as label [start:end]."""
    if value is None:
        return "–"
    if isinstance(value, list):
        return (
            ", ".join(
                f"{v.get('label')} [{v.get('start')}:{v.get('end')}]" if isinstance(v, dict) else str(v) for v in value
            )
            or "(none)"
        )
    return str(value)


def suggested(prediction: Any) -> str:
    """A model's suggestion as people read it: its label(s) and the model, not the stored record."""
    if not isinstance(prediction, dict):
        return shown(prediction)
    value = next((prediction[k] for k in ("label", "labels", "spans", "value") if prediction.get(k) is not None), None)
    model = f" ({prediction['model']})" if prediction.get("model") else ""
    return shown(value) + model


def decorated(row: dict[str, Any]) -> dict[str, Any]:
    for a in row["annotations"]:
        a["shown"] = shown(a["value"])
    status = row["status"].replace("_", " ")
    return row | {
        "status_name": status,
        "final_shown": shown(row["final_value"]),
        "prediction_shown": suggested(row["prediction"]),
    }


def project_or_refusal(request: HttpRequest, project_id: int) -> Project:
    try:
        return readable_project(project_id, request.user)
    except AnnotationError as exc:
        if exc.status == 404:
            raise Http404(exc.reason) from None
        raise PermissionDenied(exc.reason) from None


def sort_links(flt: TaskFilter) -> dict[str, dict[str, str]]:
    """Per sortable column: the order a click asks for and the current ``aria-sort``."""
    out = {}
    for column, order in SORTABLE.items():
        current = "ascending" if flt.order == order else "descending" if flt.order == f"-{order}" else "none"
        out[column] = {"next": f"-{order}" if current == "ascending" else order, "aria": current}
    return out


def table_page(
    request: HttpRequest, project: Project, params: QueryDict, error: str = "", status: int = 200
) -> HttpResponse:
    context: dict[str, Any] = {"project": project, "error": error}
    try:
        flt = TaskFilter.from_query(params)
        page = list_tasks(project, flt, params.get("page"), params.get("page_size"))
    except AnnotationError as exc:
        flt, page = TaskFilter(), None
        context["error"], status = exc.reason, exc.status
    if page is not None:
        first = (page.page - 1) * page.page_size + 1
        context |= {
            "rows": [decorated(r) for r in page.rows],
            "first": first,
            "last": first + len(page.rows) - 1,
            "previous": page.page - 1,
            "next": page.page + 1,
        }
    context |= {
        "orders": [(value, ORDER_NAMES[value]) for value in ORDERS],
        "flt": flt,
        "page": page,
        "filter_query": urlencode(flt.as_query()),
        "statuses": STATUSES,
        "sources": Source.objects.filter(items__tasks__project=project)
        .distinct()
        .order_by("name")
        .values_list("name", flat=True),
        "annotators": project.memberships.filter(role=Role.ANNOTATOR)
        .order_by("user__username")
        .values_list("user__username", flat=True),
        "sort": sort_links(flt),
        "formats": [f for f in formats.FORMATS if f != "conll" or project.task_type == Project.TaskType.SPANS],
        "can_remove": role_of(project, request.user) == Role.MANAGER,
        "single_label": project.task_type
        in (Project.TaskType.TEXT_CLASSIFICATION, Project.TaskType.IMAGE_CLASSIFICATION),
    }
    return render(request, "annotation/datamanager/tasks.html", context, status=status)


@login_required
def tasks(request: HttpRequest, project_id: int) -> HttpResponse:
    return table_page(request, project_or_refusal(request, project_id), request.GET)


@login_required
def task(request: HttpRequest, project_id: int, task_id: int) -> HttpResponse:
    project = project_or_refusal(request, project_id)
    try:
        detail = task_detail(task_id, request.user)
    except AnnotationError as exc:
        raise Http404(exc.reason) from None
    if detail["project"] != project.pk:
        raise Http404("no such task in this project")
    back = request.GET.get("back", "")
    if not back.startswith(reverse("datamanager", args=[project.pk])):
        back = reverse("datamanager", args=[project.pk])
    for a in detail["annotations"]:
        a["shown"] = shown(a["value"])
    for r in detail["relabel_requests"]:
        r["previous_text"] = json.dumps(r["previous"], indent=1, ensure_ascii=False, default=str)
    history = [e | {"shown": e["what"] if isinstance(e["what"], str) else shown(e["what"])} for e in detail["history"]]
    context = {
        "project": project,
        "task": detail,
        "history": history,
        "status_name": detail["status"].replace("_", " "),
        "role": role_of(project, request.user),  # the project's tabs
        "final_shown": shown((detail["adjudication"] or {}).get("value")),
        "prediction_shown": suggested(detail["prediction"]),
        "back": back,
        "single_label": project.task_type
        in (Project.TaskType.TEXT_CLASSIFICATION, Project.TaskType.IMAGE_CLASSIFICATION),
    }
    return render(request, "annotation/datamanager/task.html", context)


def posted_value(project: Project, request: HttpRequest) -> Any:
    """The label of an adjudication form: one name, or the checked names of a multi-label project."""
    if project.task_type == Project.TaskType.MULTI_LABEL:
        return request.POST.getlist("value")
    return request.POST.get("value", "")


@login_required
@require_POST
def bulk_action(request: HttpRequest, project_id: int) -> HttpResponse:
    """Run the bulk bar's action on the checked tasks, or on all the filter matches (``scope=filter``)."""
    project = project_or_refusal(request, project_id)
    params = QueryDict(request.POST.get("filter", ""))
    nxt = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(nxt, {request.get_host()}) or not nxt.startswith(
        reverse("datamanager", args=[project.pk])
    ):
        nxt = f"{reverse('datamanager', args=[project.pk])}?{params.urlencode()}"
    try:
        if request.POST.get("scope") == "filter":
            ids, flt = None, TaskFilter.from_query(params)
        else:
            try:
                ids, flt = [int(i) for i in request.POST.getlist("ids")], None
            except ValueError:
                raise AnnotationError("ids must be task ids") from None
            if not ids:
                raise AnnotationError("select at least one task, or all the tasks the filter matches")
        options = {
            "reason": request.POST.get("reason", ""),
            "value": posted_value(project, request),
            "override": request.POST.get("override") == "on",
            "format": request.POST.get("format", ""),
        }
        result = bulk.run(project, request.user, request.POST.get("action", ""), ids, flt, options)
    except AnnotationError as exc:
        reason = exc.reason + (f" (task ids: {', '.join(map(str, exc.errors))})" if exc.errors else "")
        return table_page(request, project, params, error=reason, status=exc.status)
    if result.payload is not None:
        response = HttpResponse(result.payload, content_type=result.content_type)
        response["Content-Disposition"] = f'attachment; filename="{result.file_name}"'
        return response
    messages.success(request, result.message())
    return redirect(nxt)
