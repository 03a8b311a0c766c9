"""Browser pages: the project list, the pages that mount the Vue app (label and review modes), and the
manager's server-rendered pages (create a project, settings, members, import, export).

The app itself is built from ``annotation/frontend`` into ``annotation/static/annotation/app``. Manager pages
show only to the project's managers and staff; every write goes through annotation.services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation import formats, image_imports, services
from annotation.api import project_for, visible_projects
from annotation.forms import AddMemberForm, ImportForm, NewProjectForm, RoleForm, SettingsForm
from annotation.intake.forms import ItemFilterForm
from annotation.intake.services import create_project_from_crawl
from annotation.services import AnnotationError, Role, role_of
from annotation.team.services import with_figures
from datastore.models import Project, ProjectMember


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # Every figure is a subquery of the one project query: the page costs the same queries for any number.
    projects = with_figures(visible_projects(request.user))
    rows = [(project, role_of(project, request.user)) for project in projects]
    can_create = services.can_create_projects(request.user)
    return render(request, "annotation/home.html", {"rows": rows, "can_create": can_create})


@login_required
def label(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    return render(request, "annotation/label.html", {"project": project, "mode": "label"})


@login_required
def review(request: HttpRequest, project_id: int) -> HttpResponse:
    """Reviewers' page; the API refuses its data to anyone without the reviewer or manager role."""
    project = get_object_or_404(visible_projects(request.user), pk=project_id)
    return render(request, "annotation/review.html", {"project": project, "mode": "review"})


@login_required
def new_project(request: HttpRequest) -> HttpResponse:
    if not services.can_create_projects(request.user):
        raise PermissionDenied("only staff or users allowed to add projects can create one")
    form = NewProjectForm(request.POST) if request.method == "POST" else NewProjectForm()
    # The optional crawl part: filled in, the project starts with the matching items as its tasks.
    items = ItemFilterForm(request.POST, prefix="items") if request.method == "POST" else ItemFilterForm(prefix="items")
    if form.is_valid() and items.is_valid():
        try:
            if items.is_empty():
                project = services.start_project(request.user, **form.cleaned_data)
                done = f"Created {project.name}. Add its members and import its tasks below."
            else:
                data = dict(form.cleaned_data)
                project, added = create_project_from_crawl(
                    request.user, data.pop("name"), data.pop("task_type"), data.pop("labels"), items.to_filter(), **data
                )
                done = f"Created {project.name}. {added.message()}"
        except AnnotationError as exc:
            form.add_error(None, exc.reason)
        else:
            messages.success(request, done)
            return redirect("manage-project", project.pk)
    failed = bool(form.errors or items.errors)
    return render(request, "annotation/manage_new.html", {"form": form, "items": items}, status=400 if failed else 200)


def managed_project(request: HttpRequest, project_id: int) -> Project:
    """The project, for its managers and staff: 404 to non-members, 403 to other members."""
    project = project_for(request.user, project_id)  # with the role, in one query
    if role_of(project, request.user) != Role.MANAGER:
        raise PermissionDenied("only the project's managers manage it")
    return project


def manage_page(request: HttpRequest, project: Project, error: str = "", **forms: Any) -> HttpResponse:
    """The manager page; forms passed in (bound, with errors) replace the blank ones and make it a 400."""
    export_url = reverse("api-export", args=[project.pk])
    context = {
        "project": project,
        "settings_form": SettingsForm(instance=project),
        "member_form": AddMemberForm(),
        "import_form": ImportForm(),
        "members": project.memberships.select_related("user").order_by("user__username"),
        "roles": Role.choices,
        "exports": [
            (name, f"{export_url}?format={name}")
            for name in formats.FORMATS
            if name != "conll" or project.task_type == Project.TaskType.SPANS
        ],
        "member_error": error,
        **forms,
    }
    failed = bool(error) or any(form.errors for form in forms.values())
    return render(request, "annotation/manage_project.html", context, status=400 if failed else 200)


def post_form(
    request: HttpRequest, project: Project, name: str, form: Any, write: Callable[[dict[str, Any]], str]
) -> HttpResponse:
    """Validate ``form``; when it is valid, ``write`` its data and report what it did, else (or when the
    write refuses) show the manager page again with the form and its errors as ``name``."""
    if form.is_valid():
        try:
            done = write(form.cleaned_data)
        except AnnotationError as exc:
            form.add_error(None, exc.reason)
        else:
            messages.success(request, done)
            return redirect("manage-project", project.pk)
    return manage_page(request, project, **{name: form})


@login_required
def manage_project(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)
    if request.method != "POST":
        return manage_page(request, project)

    def save(data: dict[str, Any]) -> str:
        services.update_settings(project, request.user, **data)
        return "Settings saved."

    # A copy: validating a model form writes the input into its instance, and the page shows the project.
    form = SettingsForm(request.POST, instance=Project.objects.get(pk=project.pk))
    return post_form(request, project, "settings_form", form, save)


@login_required
@require_POST
def add_member(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)

    def add(data: dict[str, Any]) -> str:
        services.add_member(project, request.user, data["user"], data["role"])
        return f"{data['user'].username} is now {data['role']}."

    return post_form(request, project, "member_form", AddMemberForm(request.POST), add)


@login_required
@require_POST
def member(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    """Change a member's role, or remove them when the form's ``action`` is ``remove``."""
    project = managed_project(request, project_id)
    someone = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=member_id)
    form = RoleForm(request.POST)
    try:
        if request.POST.get("action") == "remove":
            services.remove_member(project, request.user, someone)
            done = f"{someone.user.username} was removed from the project."
        elif form.is_valid():
            services.change_role(project, request.user, someone, form.cleaned_data["role"])
            done = f"{someone.user.username} is now {form.cleaned_data['role']}."
        else:
            return manage_page(request, project, error=f"{someone.user.username}: choose one of the roles")
    except AnnotationError as exc:
        return manage_page(request, project, error=exc.reason)
    messages.success(request, done)
    return redirect("manage-project", project.pk)


@login_required
@require_POST
def import_tasks(request: HttpRequest, project_id: int) -> HttpResponse:
    """The API's import from a form: the same parsers, the same all-or-nothing rule and messages."""
    project = managed_project(request, project_id)

    def load(data: dict[str, Any]) -> str:
        if data["format"] == "images":
            files = [(upload.name, upload.read()) for upload in data["file"]]
            return (
                f"Imported {len(files)} image(s): {services.import_images(project, request.user, files)} new task(s)."
            )
        upload = data["file"][0]
        if image_imports.is_archive(upload):
            result = image_imports.import_archive(project, request.user, data["format"], upload)
        elif data["format"] == "imagefolder":
            raise AnnotationError("Image folders come as one zip archive of <class>/<file> folders.")
        else:
            result = image_imports.import_records_file(project, request.user, data["format"], upload)
        if "job" in result:
            return f"The import runs in the background (job {result['job'].pk}); its progress is on this page."
        if "files" in result:
            return (
                f"Imported {result['files']} image(s): {result['tasks_created']} new task(s), "
                f"{result['duplicates']} duplicate(s), {result['already_in_project']} already in the project."
            )
        return f"Imported {result['records']} record(s): {result['tasks_created']} new task(s)."

    return post_form(request, project, "import_form", ImportForm(request.POST, request.FILES), load)
