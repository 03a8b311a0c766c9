"""Evaluation pages: the leaderboard, one evaluation (metrics, confusion matrix, filtered cases), one case as the
annotator saw it (its neighbours in the list, links to its task, source page and lineage, the send-back form), two
model versions compared (every metric with its delta, the records that changed, a page at a time), exports, plots.

Server-rendered. Reads go through ``evaluation.records``, the one write (sending a case back for re-labelling)
through ``annotation.services.send_back``. An evaluation shows to staff and to the members of its dataset version's
project, whatever their role, and is a 404 to everyone else, so its existence does not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models.functions import Left, Length
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from annotation import services as annotation_services
from annotation.services import AnnotationError, Role, project_for_user, role_of
from datastore.models import Evaluation, Prediction, Task
from datastore.naming import web_url
from evaluation import records
from evaluation.evaluate import EvaluationError
from evaluation.metrics import SINGLE_LABEL
from evaluation.rendering import (
    confusion_rows,
    figures,
    highlight,
    metric_deltas,
    metric_tables,
    name_of,
    neighbours,
    sorted_scores,
    span_rows,
    table_deltas,
)

LIST_FIELDS = ("id", "evaluation_id", "record_id", "item_id", "true_label", "predicted_label", "confidence", "correct")
ITEM_FIELDS = ("item__title", "item__canonical_url", "item__image")  # what an item's name is made of
SNIPPET = 160  # characters of a case's text in lists; the database cuts them, so long texts never travel
COMPARE_PAGE = 50
COMPARE_SECTIONS = ("fixed", "broken", "both_wrong")
SEND_BACK_ROLES = (Role.MANAGER, Role.REVIEWER)
TASK_ROLES = (Role.MANAGER, Role.REVIEWER)  # who may open a task in the data manager
PLOT_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def evaluation_for(user: Any, evaluation_id: int | str) -> Evaluation:
    """The evaluation, its project and the user's role there (two queries); 404 when the user may not see it."""
    found = (
        Evaluation.objects.select_related("model_version", "dataset_version", "created_by")
        .filter(pk=evaluation_id)
        .first()
    )
    project = project_for_user(found.dataset_version.project_id, user) if found is not None else None
    if found is None or project is None:
        raise Http404("no such evaluation")
    found.dataset_version.project = project  # carries the role: role_of costs no query
    return found


@login_required
def leaderboard(request: HttpRequest) -> HttpResponse:
    """Model versions x dataset versions, one link per split; the best of several on one version and split in bold."""
    visible = Evaluation.objects.all()
    if not request.user.is_staff:
        user = request.user  # signed in (login_required), never AnonymousUser
        visible = visible.filter(dataset_version__project__memberships__user=user)  # type: ignore[misc]  # as above
    board = records.leaderboard(visible)
    rows, datasets = board["rows"], board["datasets"]
    shown = [ev for row in rows for cell in row["cells"] for ev in cell]
    scores: dict[tuple[int, str], list[float]] = {}
    for ev in shown:
        scores.setdefault((ev.dataset_version_id, ev.split), []).append(ev.score)
    best = {
        ev.pk for ev in shown if len(mine := scores[(ev.dataset_version_id, ev.split)]) > 1 and ev.score == max(mine)
    }
    return render(request, "evaluation/leaderboard.html", {"datasets": datasets, "rows": rows, "best": best})


@login_required
def evaluation(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    """Metrics, the confusion matrix and one page of the cases the filters select; bad filters are a 400."""
    ev = evaluation_for(request.user, evaluation_id)
    context: dict[str, Any] = {"ev": ev, "figures": figures(ev), "tables": metric_tables(ev), "page": None}
    try:
        flt = records.CaseFilter.from_query(request.GET)
    except EvaluationError as exc:
        flt, context["filter_error"] = records.CaseFilter(), str(exc)
    else:
        listed = (
            records.cases(ev, flt)
            .select_related("item")
            .only(*LIST_FIELDS, *ITEM_FIELDS)
            .annotate(snippet=Left("text", SNIPPET), length=Length("text"))
        )
        page = Paginator(listed, records.PAGE_SIZE).get_page(request.GET.get("page"))
        page.object_list = list(page.object_list)
        for p in page.object_list:
            p.name = name_of(p.item, p.snippet)  # type: ignore[attr-defined]  # for the template only
        context["page"] = page
    context |= {
        "flt": flt,
        "confusion": confusion_rows(ev, flt.true, flt.predicted),
        "label_options": label_options(ev),
        "others": Evaluation.objects.filter(dataset_version_id=ev.dataset_version_id, split=ev.split)
        .exclude(pk=ev.pk)
        .select_related("model_version")
        .only("id", "score", "model_version__name", "model_version__version")
        .order_by("model_version__name", "model_version__version"),
    }
    return render(request, "evaluation/evaluation.html", context, status=400 if "filter_error" in context else 200)


def label_options(ev: Evaluation) -> list[str]:
    """What the true/predicted filters offer: the labels, the label sets seen (multi-label), nothing (spans)."""
    if ev.task_type in SINGLE_LABEL:
        return [str(label) for label in ev.labels]
    if ev.task_type == "multi_label":
        stored = Prediction.objects.filter(evaluation=ev)
        seen = set(stored.values_list("true_label", flat=True).distinct()[:500])
        seen |= set(stored.values_list("predicted_label", flat=True).distinct()[:500])
        return sorted(seen - {""})  # an empty set cannot be asked for: the filters read "" as any
    return []


@login_required
def case(request: HttpRequest, evaluation_id: int, prediction_id: int) -> HttpResponse:
    ev = evaluation_for(request.user, evaluation_id)
    return case_page(request, ev, case_of(ev, prediction_id))


def case_of(ev: Evaluation, prediction_id: int) -> Prediction:
    return get_object_or_404(Prediction.objects.select_related("item"), evaluation=ev, pk=prediction_id)


def task_of(ev: Evaluation, prediction: Prediction) -> Task | None:
    """The project's task of the case's item (None when the record has no item in the project any more)."""
    if prediction.item_id is None:
        return None
    return Task.objects.filter(project_id=ev.dataset_version.project_id, item_id=prediction.item_id).first()


def case_page(
    request: HttpRequest, ev: Evaluation, prediction: Prediction, error: str = "", status: int = 200
) -> HttpResponse:
    """The case as the annotator saw it; ``error`` (a refused send-back) is shown and sets the status."""
    project = ev.dataset_version.project
    task = task_of(ev, prediction)
    role = role_of(project, request.user)
    query = request.GET.copy()
    query.pop("page", None)
    item = prediction.item
    try:
        flt = records.CaseFilter.from_query(query)
    except EvaluationError:  # a hand-edited query: the neighbours of the unfiltered list
        flt = records.CaseFilter()
    around = neighbours(records.cases(ev, flt), prediction, flt.ORDERS[flt.order])
    listed = query.copy()
    if (page := (around["position"] - 1) // records.PAGE_SIZE + 1) > 1:
        listed["page"] = str(page)  # back to the list's page that holds this case
    back, query_text = listed.urlencode(), query.urlencode()
    context: dict[str, Any] = {
        "ev": ev,
        "case": prediction,
        "name": name_of(item, prediction.text, prediction.image),
        "source_url": web_url(item.canonical_url or item.url) if item is not None else "",
        "around": around,
        "outcome_filter": {True: "right", False: "wrong", None: "all"}[flt.correct],
        "task": task,
        "task_url": reverse("datamanager-task", args=[project.pk, task.pk]) if task and role in TASK_ROLES else "",
        "waiting": annotation_services.pending(task) if task is not None else None,
        "can_send_back": role in SEND_BACK_ROLES,
        "error": error,
        "reason": request.POST.get("reason", ""),
        "max_reason": annotation_services.MAX_REASON,
        "back": reverse("evaluation", args=[ev.pk]) + (f"?{back}" if back else "") + "#cases",
        "query": f"?{query_text}" if query_text else "",
        "scores": sorted_scores(prediction.scores),
        "image_url": reverse("api-item-image", args=[prediction.item_id])
        if prediction.item is not None and prediction.item.image
        else "",
    }
    if ev.task_type == "spans":
        context["renderings"] = [
            ("true", "Labelled spans (the dataset version)", highlight(prediction.text, prediction.true_value)),
            ("predicted", "Predicted spans (the model)", highlight(prediction.text, prediction.predicted_value)),
        ]
        context["span_rows"] = span_rows(prediction)
    elif ev.task_type == "multi_label":
        true, predicted = set(prediction.true_value or []), set(prediction.predicted_value or [])
        context["label_sets"] = {"missed": sorted(true - predicted), "extra": sorted(predicted - true)}
    return render(request, "evaluation/case.html", context, status=status)


@login_required
@require_POST
def send_back(request: HttpRequest, evaluation_id: int, prediction_id: int) -> HttpResponse:
    """Send the case's task back to the annotation queue with the reason; a refusal shows on the case page."""
    ev = evaluation_for(request.user, evaluation_id)
    prediction = case_of(ev, prediction_id)
    task = task_of(ev, prediction)
    if task is None:
        why = "this record has no item in the project's tasks any more, so there is no task to send back"
        return case_page(request, ev, prediction, error=why, status=400)
    try:
        annotation_services.send_back(task.pk, request.user, request.POST.get("reason", ""), prediction)
    except AnnotationError as exc:
        return case_page(request, ev, prediction, error=exc.reason, status=exc.status)
    name = name_of(prediction.item, prediction.text, prediction.image)
    messages.success(request, f"“{name}” was sent back to the annotation queue for re-labelling.")
    back = request.GET.urlencode()
    return redirect(reverse("evaluation-case", args=[ev.pk, prediction.pk]) + (f"?{back}" if back else ""))


@login_required
def compare(request: HttpRequest) -> HttpResponse:
    """Two evaluations of one dataset version and split: records fixed, broken and wrong in both."""
    raw = [request.GET.get(name, "") for name in ("a", "b")]
    if not all(value.isdigit() for value in raw):
        error = f"choose two evaluations to compare: a and b must be evaluation ids, not {raw[0]!r} and {raw[1]!r}"
        return render(request, "evaluation/compare.html", {"error": error}, status=400)
    a, b = (evaluation_for(request.user, value) for value in raw)
    try:
        diff = records.compare(a, b)
    except EvaluationError as exc:
        return render(request, "evaluation/compare.html", {"a": a, "b": b, "error": str(exc)}, status=400)
    titles = {
        "fixed": ("Fixed", f"Wrong in {a.model_version}, right in {b.model_version}"),
        "broken": ("Broken", f"Right in {a.model_version}, wrong in {b.model_version}"),
        "both_wrong": ("Both wrong", "Wrong in both"),
    }
    show = request.GET.get("show", "")
    show = show if show in COMPARE_SECTIONS else next((k for k in COMPARE_SECTIONS if diff[k]), "fixed")
    tables = [
        {"title": table["title"], "rows": table_deltas(table["rows"], theirs["rows"])}
        for table, theirs in zip(metric_tables(a), metric_tables(b), strict=False)
    ]
    context = {
        "a": a,
        "b": b,
        "sections": [{"key": k, "name": titles[k][0], "total": len(diff[k])} for k in COMPARE_SECTIONS],
        "show": show,
        "show_title": titles[show][1],
        "page": named_pairs(Paginator(diff[show], COMPARE_PAGE).get_page(request.GET.get("page"))),
        "delta": b.score - a.score,
        "n_delta": b.n - a.n,
        "deltas": metric_deltas([("score", a.score), *figures(a)], [("score", b.score), *figures(b)]),
        "tables": tables,
    }
    return render(request, "evaluation/compare.html", context)


def named_pairs(page: Any) -> Any:
    """The page of (A, B) case pairs, each A case given its item's name as ``name`` (one query for the page)."""
    pairs = list(page.object_list)
    named = Prediction.objects.filter(pk__in=[pa.pk for pa, _ in pairs]).select_related("item").only("id", *ITEM_FIELDS)
    items = {p.pk: p.item for p in named}
    for pa, _ in pairs:
        pa.name = name_of(items.get(pa.pk), pa.text)
    page.object_list = pairs
    return page


@login_required
def export(request: HttpRequest, evaluation_id: str, fmt: str) -> HttpResponseBase:
    """The evaluation as JSON or CSV, streamed; the case filters apply when given."""
    ev = evaluation_for(request.user, evaluation_id)
    try:
        flt = records.CaseFilter.from_query(request.GET)
    except EvaluationError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    chunks, content_type = {
        "json": (records.iter_json, "application/json"),
        "csv": (records.iter_csv, "text/csv; charset=utf-8"),
    }[fmt]
    response = StreamingHttpResponse(chunks(ev, flt), content_type=content_type)
    name = slugify(f"evaluation-{ev.pk}-{ev.model_version}-{ev.dataset_version.name}-{ev.split}")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@login_required
def plot(request: HttpRequest, evaluation_id: str, kind: str, fmt: str) -> HttpResponse:
    """The reliability diagram or the confusion matrix as PNG or SVG; 404 for a task type without that plot."""
    from evaluation import plots  # matplotlib: loaded by the first plot, not by every web process at start

    ev = evaluation_for(request.user, evaluation_id)
    plotters: dict[str, tuple[str, Callable[..., Any]]] = {
        "reliability": ("calibration", plots.reliability_diagram),
        "confusion": ("confusion_matrix", plots.confusion_matrix_plot),
    }
    metric, draw = plotters[kind]
    if not ev.metrics.get(metric):
        raise Http404(f"a {ev.task_type} evaluation has no {kind} plot")
    title = f"{ev.model_version} on {ev.dataset_version.name}:{ev.split}"
    options: dict[str, Any] = {"title": title}
    if kind == "confusion" and request.GET.get("normalize") == "1":
        options |= {"normalize": True, "title": f"{title}, share of each true label"}
    response = HttpResponse(draw(ev.metrics[metric], fmt, **options), content_type=PLOT_TYPES[fmt])
    response["Cache-Control"] = "private, max-age=3600"  # an evaluation never changes; a new run is a new id
    return response
