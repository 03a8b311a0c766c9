"""``{% preannotation_section project %}``: the manager page's pre-annotation and queue order section."""

from __future__ import annotations

from typing import Any

from django import template

from annotation import preannotation
from annotation.preannotation_views import PreannotateForm, QueueOrderForm, suggested_open_tasks
from datastore.models import Project

register = template.Library()


@register.inclusion_tag("annotation/preannotation_section.html", takes_context=True)
def preannotation_section(context: template.Context, project: Project) -> dict[str, Any]:
    """The section's forms (the bound ones of a refused request when the page shows one), the models that do
    not fit with their reasons, and the project's recent jobs."""
    form = context.get("preannotate_form") or PreannotateForm(project)
    jobs = preannotation.recent_jobs(project, limit=10)
    return {
        "project": project,
        "csrf_token": context.get("csrf_token"),
        "preannotate_form": form,
        "misfits": [c for c in form.candidates if not c.fits],
        "queue_form": context.get("queue_form") or QueueOrderForm(instance=project),
        "suggested": suggested_open_tasks(project),
        "uncertainty_order": project.queue_order == Project.QueueOrder.UNCERTAINTY,
        "jobs": jobs,
        "running": any(job.status in preannotation.ACTIVE for job in jobs),
    }
