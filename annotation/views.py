"""Browser pages: the project list and the keyboard-first labelling page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from annotation.api import visible_projects


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/home.html", {"projects": visible_projects(request.user)})


@login_required
def label(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    return render(request, "annotation/label.html", {"project": project})
