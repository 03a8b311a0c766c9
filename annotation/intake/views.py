"""The Add items page: a manager chooses crawled items by filter, previews the counts, adds them or follows the
source. Every write goes through annotation.intake.services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation.intake import services
from annotation.intake.forms import ItemFilterForm
from annotation.services import AnnotationError
from annotation.views import managed_project
from datastore.models import ProjectJob
from datastore.selection import item_kind_for

ACTIONS = ("preview", "add", "follow")


@login_required
def add_items(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    error, counts = "", None
    if request.method == "POST":
        form = ItemFilterForm(request.POST)
        action = request.POST.get("action", "preview")
        if action not in ACTIONS:
            error = f"unknown action {action!r}"
        elif form.is_valid():
            try:
                spec = form.to_filter()
                if action == "preview":
                    counts = services.preview(project, request.user, spec)
                elif action == "add":
                    result = services.add_items(project, request.user, spec)
                    messages.success(request, result.message())
                    return redirect("manage-items", project.pk)
                else:
                    if not spec.sources:
                        raise AnnotationError("choose the source to follow")
                    source = spec.sources.pop()
                    services.follow(project, request.user, source, spec)
                    messages.success(
                        request, f"{project.name} now follows {source}: new items are added as crawls store them."
                    )
                    return redirect("manage-items", project.pk)
            except AnnotationError as exc:
                error = exc.reason
    else:
        form = ItemFilterForm(initial={"kind": item_kind_for(project.task_type)})
    context = {
        "project": project,
        "form": form,
        "counts": counts,
        "error": error,
        "feeds": project.feeds.select_related("source").order_by("source__name"),
        "jobs": ProjectJob.objects.filter(project=project, kind=ProjectJob.Kind.ADD_ITEMS).order_by("-pk")[:5],
        "item_kind": item_kind_for(project.task_type),
    }
    failed = bool(error) or bool(form.errors)
    return render(request, "annotation/intake/add_items.html", context, status=400 if failed else 200)
