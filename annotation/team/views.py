"""Pages of a project's team (managers), its question board (managers and reviewers) and its guideline
versions with the agreement under each (managers and reviewers; managers edit). Writes go through
annotation.services and annotation.team.services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from annotation import services
from annotation.api import project_for
from annotation.services import AnnotationError, Role
from annotation.services.guidelines import agreement_by_version, history
from annotation.team import services as team
from annotation.team.forms import AnswerForm, CreateAccountForm, GuidelinesForm
from datastore.models import Project, ProjectMember, Question

STATES = ("open", "answered", "all")


def project_with_role(request: HttpRequest, project_id: int, *roles: str) -> Project:
    """The project for a member with one of ``roles`` (staff count as managers): 404 to others, 403 to members
    with another role."""
    project = project_for(request.user, project_id)
    if services.role_of(project, request.user) not in roles:
        raise PermissionDenied(f"this page is for the project's {' and '.join(roles)}s")
    return project


def team_page(request: HttpRequest, project: Project, form: Any = None, invitation: Any = None) -> HttpResponse:
    invite_url = request.build_absolute_uri(invitation.path) if invitation else ""
    context = {
        "project": project,
        "members": team.member_stats(project),
        "form": form or CreateAccountForm(),
        "invitation": invitation,
        "invite_url": invite_url,
    }
    return render(request, "annotation/team/team.html", context, status=400 if form and form.errors else 200)


@login_required
def team_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """The members with their throughput and agreement; POST creates an account and shows its invitation link."""
    project = project_with_role(request, project_id, Role.MANAGER)
    if request.method != "POST":
        return team_page(request, project)
    form = CreateAccountForm(request.POST)
    if form.is_valid():
        try:
            invitation = team.create_account(project, request.user, **form.cleaned_data)
        except AnnotationError as exc:
            form.add_error(None, exc.reason)
        else:
            messages.success(request, f"Created {invitation.member.user.username} ({invitation.member.role}).")
            return team_page(request, project, invitation=invitation)
    return team_page(request, project, form=form)


@login_required
@require_POST
def member_active(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    project = project_with_role(request, project_id, Role.MANAGER)
    member = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=member_id)
    active = request.POST.get("active") == "1"
    try:
        team.set_active(project, request.user, member, active)
    except AnnotationError as exc:
        messages.error(request, exc.reason)
    else:
        messages.success(request, f"{member.user.username} is {'active' if active else 'deactivated'}.")
    return redirect("team", project.pk)


@login_required
@require_POST
def member_invite(request: HttpRequest, project_id: int, member_id: int) -> HttpResponse:
    project = project_with_role(request, project_id, Role.MANAGER)
    member = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=member_id)
    try:
        invitation = team.reinvite(project, request.user, member)
    except AnnotationError as exc:
        messages.error(request, exc.reason)
        return redirect("team", project.pk)
    return team_page(request, project, invitation=invitation)


@login_required
def questions_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """Open and answered questions (``?state=``), who asked, on which task, with an answer form."""
    project = project_with_role(request, project_id, Role.MANAGER, Role.REVIEWER)
    state = request.GET.get("state", "open")
    if state not in STATES:
        state = "open"
    rows = team.questions(project, request.user, state)
    context = {
        "project": project,
        "role": services.role_of(project, request.user),
        "questions": rows[:200],
        "state": state,
        "states": STATES,
    }
    return render(request, "annotation/team/questions.html", context)


@login_required
@require_POST
def answer_view(request: HttpRequest, project_id: int, question_id: int) -> HttpResponse:
    project = project_with_role(request, project_id, Role.MANAGER, Role.REVIEWER)
    question = get_object_or_404(Question.objects.select_related("project"), project=project, pk=question_id)
    form = AnswerForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Question #{question.pk}: an answer needs some text.")
    else:
        try:
            question = services.answer(
                question, request.user, form.cleaned_data["answer"], form.cleaned_data["add_to_guidelines"]
            )
        except AnnotationError as exc:
            messages.error(request, f"Question #{question.pk}: {exc.reason}")
        else:
            added = question.added_to_guidelines
            extra = f" and added to the guidelines (version {added.number})" if added else ""
            messages.success(request, f"Question #{question.pk} answered{extra}.")
    return redirect(f"{reverse('questions', args=[project.pk])}?state={request.POST.get('state', 'open')}")


@login_required
@require_POST
def add_to_guidelines_view(request: HttpRequest, project_id: int, question_id: int) -> HttpResponse:
    project = project_with_role(request, project_id, Role.MANAGER, Role.REVIEWER)
    try:
        question = team.add_to_guidelines(project, request.user, question_id)
    except AnnotationError as exc:
        messages.error(request, f"Question #{question_id}: {exc.reason}")
    else:
        number = question.added_to_guidelines.number  # type: ignore[union-attr]  # set by the call above
        messages.success(request, f"Question #{question_id} is in the guidelines (version {number}).")
    return redirect(f"{reverse('questions', args=[project.pk])}?state=answered")


@login_required
def guidelines_view(request: HttpRequest, project_id: int) -> HttpResponse:
    """Agreement per guideline version and the text history; managers edit the guidelines here (with a note)."""
    project = project_with_role(request, project_id, Role.MANAGER, Role.REVIEWER)
    is_manager = services.role_of(project, request.user) == Role.MANAGER
    form = GuidelinesForm(initial={"guidelines": project.guidelines})
    if request.method == "POST":
        if not is_manager:
            raise PermissionDenied("only the project's managers edit its guidelines")
        form = GuidelinesForm(request.POST)
        if form.is_valid():
            try:
                version = services.edit_guidelines(
                    project, request.user, form.cleaned_data["guidelines"], form.cleaned_data["note"]
                )
            except AnnotationError as exc:
                form.add_error(None, exc.reason)
            else:
                done = f"Saved as guideline version {version.number}." if version else "No change to save."
                messages.success(request, done)
                return redirect("guidelines", project.pk)
    services.current_guideline_version(project)  # a project from before versions gets its version 1 here
    context = {
        "project": project,
        "per_version": agreement_by_version(project),
        "history": history(project),
        "form": form,
        "is_manager": is_manager,
        "role": services.role_of(project, request.user),
    }
    return render(request, "annotation/team/guidelines.html", context, status=400 if form.errors else 200)


class SetPassword(auth_views.PasswordResetConfirmView):
    """The invitation (and password reset) link: Django's view, in the site's look."""

    template_name = "annotation/team/set_password.html"
    success_url = reverse_lazy("password_reset_complete")


class PasswordSet(auth_views.PasswordResetCompleteView):
    template_name = "annotation/team/password_set.html"
