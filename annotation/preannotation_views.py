"""The manager page's pre-annotation section: pick a registered model that fits, start pre-annotation as a
background job, follow the project's jobs, and set the queue order. The section itself is rendered by the
``preannotation_section`` template tag (``annotation.templatetags.preannotation_tags``); these views take its
forms, write through ``annotation.preannotation`` and ``annotation.services``, and show the manager page again."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from annotation import preannotation, services
from annotation.views import managed_project, post_form
from datastore.models import Project, Task
from datastore.services.registry import RegistryError


class ModelSelect(forms.Select):
    """A select whose options for models that do not fit are shown, with their reason, but disabled."""

    def __init__(self, *args: Any, misfits: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.misfits = misfits or {}

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if str(value) in self.misfits:
            option["attrs"]["disabled"] = True
        return option


class PreannotateForm(forms.Form):
    prefix = "pre"  # the manager page has other forms: their fields' ids stay apart
    model = forms.ChoiceField(label="Model", help_text="A registered version (NAME:VERSION) or alias (NAME@ALIAS).")
    only_open = forms.BooleanField(
        required=False, initial=True, label="Only open tasks", help_text="Leave done tasks alone."
    )
    only_unsuggested = forms.BooleanField(
        required=False, label="Only tasks without a suggestion", help_text="Keep the suggestions tasks have."
    )

    def __init__(self, project: Project, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        found = preannotation.candidates(project)
        self.candidates = found
        fitting = [(c.ref, c.ref) for c in found if c.fits]
        misfits = {c.ref: c.misfit for c in found if not c.fits}
        choices: list[Any] = [("", "choose a model" if fitting else "no registered model fits this project")]
        if fitting:
            choices.append(("Fit this project", fitting))
        if misfits:
            choices.append(("Do not fit", [(ref, f"{ref}: does not fit") for ref in misfits]))
        field = self.fields["model"]
        field.widget = ModelSelect(misfits=misfits)
        field.choices = choices  # type: ignore[attr-defined]  # a ChoiceField: its choices are settable


class QueueOrderForm(forms.ModelForm):
    prefix = "order"  # the settings form on the same page has a queue_order field too

    class Meta:
        model = Project
        fields = ["queue_order"]
        labels = {"queue_order": "Queue order"}
        help_texts = {"queue_order": "Most uncertain first hands out the tasks the model is least sure of first."}


def suggested_open_tasks(project: Project) -> int:
    """Open tasks with a model's uncertainty: what the uncertainty order sorts on."""
    return Task.objects.filter(project=project, status=Task.Status.OPEN, uncertainty__isnull=False).count()


@login_required
@require_POST
def start(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)

    def write(data: dict[str, Any]) -> str:
        try:
            job = preannotation.start_preannotation(
                project, request.user, data["model"], data["only_open"], data["only_unsuggested"]
            )
        except RegistryError as exc:
            raise services.AnnotationError(exc.reason, exc.status) from None
        return f"Pre-annotation job {job.pk} with {job.params['resolved']} is queued; its progress is shown below."

    return post_form(request, project, "preannotate_form", PreannotateForm(project, request.POST), write)


@login_required
@require_POST
def queue_order(request: HttpRequest, project_id: int) -> HttpResponse:
    project = managed_project(request, project_id)

    def write(data: dict[str, Any]) -> str:
        services.update_settings(project, request.user, queue_order=data["queue_order"])
        done = f"Queue order: {Project.QueueOrder(data['queue_order']).label}."
        if data["queue_order"] == Project.QueueOrder.UNCERTAINTY and not suggested_open_tasks(project):
            done += " No open task has a suggestion yet: tasks are handed out in order until pre-annotation runs."
        return done

    form = QueueOrderForm(request.POST, instance=Project.objects.get(pk=project.pk))  # the page shows the project
    return post_form(request, project, "queue_form", form, write)
