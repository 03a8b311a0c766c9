"""Browser pages: the project list and the pages that mount the Vue app (label and review modes).

The app itself is built from ``annotation/frontend`` into ``annotation/static/annotation/app``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotation.api import visible_projects
from annotation.services import role_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    rows = [(project, role_of(project, request.user)) for project in visible_projects(request.user)]
    return render(request, "annotation/home.html", {"rows": rows})


@login_required
def label(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    return render(request, "annotation/label.html", {"project": project, "mode": "label"})


@login_required
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    """Reviewers' page; the API refuses its data to anyone without the reviewer or manager role."""
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    return render(request, "annotation/review.html", {"project": project, "mode": "review"})
