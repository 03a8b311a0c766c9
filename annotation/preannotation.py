"""Pre-annotation: a registered model's suggestions on a project's tasks, run as a background project job.

A manager picks a model (``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``). It fits the project when it is for the
same task type and every label it predicts is one of the project's labels (a model may know fewer labels than
the project: its suggestions are still valid labels; one that predicts a label the project does not have
would suggest what nobody can choose). A model that does not fit is refused before anything runs
(``start_preannotation``). The job (``ProjectJob`` of kind ``preannotate``) runs on the ``projects`` Celery
queue: it reports progress every batch and writes every suggestion in one transaction at the end, so a job
that fails has written none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from annotation.background import Report, fail_stale, runs, start
from annotation.services.access import AnnotationError, Role, require_role
from datastore.models import ModelAlias, ModelVersion, Project, ProjectJob, Task
from datastore.services import unpacked_model
from datastore.services.registry import resolve
from modelpack.archive import ArchiveError
from modelpack.inputs import InputError
from modelpack.runtime import load_runtime
from modelpack.store import StoreError

BATCH_SIZE = 256
MAX_CANDIDATES = 200
ACTIVE = (ProjectJob.Status.QUEUED, ProjectJob.Status.RUNNING)


@dataclass(frozen=True)
class Candidate:
    """A registered model as a manager may name it (``ref``), and why it does not fit the project (``misfit``)."""

    ref: str
    model: ModelVersion
    misfit: str

    @property
    def fits(self) -> bool:
        return not self.misfit


def misfit(project: Project, model: ModelVersion) -> str:
    """Why ``model`` cannot pre-annotate ``project``; empty when it fits (see the module docstring)."""
    if model.task_type != project.task_type:
        return f"model {model} is for {model.task_type}, the project is {project.task_type}"
    labels = model.manifest.get("labels")
    if not isinstance(labels, list) or not labels:
        return f"model {model} names no labels in its manifest"
    unknown = [label for label in labels if label not in project.labels]
    if unknown:
        return f"model {model} predicts {unknown}, which the project's labels {project.labels} do not have"
    return ""


def candidates(project: Project) -> list[Candidate]:
    """Every registered version and alias (newest versions first, aliases after their model's versions), each
    with why it does not fit the project, fitting ones first."""
    versions = list(ModelVersion.objects.order_by("name", "-version")[:MAX_CANDIDATES])
    aliases = ModelAlias.objects.select_related("model_version").order_by("name", "alias")[:MAX_CANDIDATES]
    rows = [Candidate(str(m), m, misfit(project, m)) for m in versions]
    rows += [Candidate(str(a), a.model_version, misfit(project, a.model_version)) for a in aliases]
    return sorted(rows, key=lambda c: (not c.fits, c.model.name, "@" in c.ref, -c.model.version, c.ref))


def start_preannotation(
    project: Project, user: Any, ref: str, only_open: bool = True, only_unsuggested: bool = False
) -> ProjectJob:
    """Check the request and queue a pre-annotation job; the job runs the version ``ref`` names now.

    Raises:
        AnnotationError: the user is not a manager (403), the model does not fit (400), or a pre-annotation
            job of the project is queued or running (409). No job is created then.
        RegistryError: ``ref`` is malformed (400) or names no model (404).
    """
    require_role(project, user, Role.MANAGER)
    model = resolve(ref)
    reason = misfit(project, model)
    if reason:
        raise AnnotationError(f"{reason}; nothing was started")
    fail_stale(project)  # a job whose worker died does not block this one
    active = ProjectJob.objects.filter(project=project, kind=ProjectJob.Kind.PREANNOTATE, status__in=ACTIVE).first()
    if active is not None:
        raise AnnotationError(f"pre-annotation job {active.pk} of this project is {active.status}; wait for it", 409)
    params = {"model": ref, "model_version": model.pk, "resolved": str(model)}
    params |= {"only_open": bool(only_open), "only_unsuggested": bool(only_unsuggested)}
    return start(project, ProjectJob.Kind.PREANNOTATE, params, user)


@runs(ProjectJob.Kind.PREANNOTATE)
def run_preannotation(job: ProjectJob, report: Report) -> dict[str, Any]:
    """The worker's side of ``start_preannotation``: the fit is checked again (labels may have changed)."""
    model = ModelVersion.objects.filter(pk=job.params.get("model_version")).first()
    if model is None:
        raise AnnotationError(f"model {job.params.get('resolved')} is no longer registered; nothing was written")
    project = Project.objects.get(pk=job.project_id)
    count = preannotate(
        project,
        model,
        only_open=job.params.get("only_open", True),
        only_unsuggested=job.params.get("only_unsuggested", False),
        report=report,
    )
    return {"tasks": count, "model": str(model)}


def preannotate(
    project: Project,
    model: ModelVersion,
    batch_size: int = BATCH_SIZE,
    only_open: bool = True,
    only_unsuggested: bool = False,
    report: Callable[[int, int | None], None] | None = None,
) -> int:
    """Store the model's prediction on the project's tasks as suggestions, with their uncertainty
    (1 - top confidence) for active learning; returns the number of tasks given one.

    Runs the verified archive through the shared runtime. ``only_open`` leaves done tasks alone,
    ``only_unsuggested`` tasks that have a suggestion already. ``report(done, total)`` is called before the
    first batch and after each. Every suggestion is written in one transaction at the end, or none.

    Raises:
        AnnotationError: the model does not fit, cannot be loaded, or a task's input cannot be read.
    """
    reason = misfit(project, model)
    if reason:
        raise AnnotationError(f"{reason}; nothing was written")
    try:
        runtime = load_runtime(unpacked_model(model))
    except (ArchiveError, InputError, StoreError) as exc:
        raise AnnotationError(f"model {model} cannot be loaded: {exc}; nothing was written") from None
    tasks_qs = Task.objects.filter(project=project)
    if only_open:
        tasks_qs = tasks_qs.filter(status=Task.Status.OPEN)
    if only_unsuggested:
        tasks_qs = tasks_qs.filter(prediction__isnull=True)
    tasks = list(tasks_qs.select_related("item").order_by("id"))
    report = report or (lambda done, total: None)
    report(0, len(tasks))
    predictions = []
    for first in range(0, len(tasks), batch_size):
        chunk = tasks[first : first + batch_size]
        try:
            predictions += runtime.predict([_model_input(project, t) for t in chunk])
        except InputError as exc:
            raise AnnotationError(f"task {chunk[exc.index or 0].pk}: {exc.reason}; nothing was written") from None
        report(len(predictions), len(tasks))
    for task, prediction in zip(tasks, predictions, strict=True):
        task.prediction = {**prediction.as_dict(), "model": str(model)}
        task.uncertainty = round(1.0 - prediction.confidence, 6)
    with transaction.atomic():  # every suggestion of this run, or none
        Task.objects.bulk_update(tasks, ["prediction", "uncertainty"], batch_size=1000)
    return len(tasks)


def _model_input(project: Project, task: Task) -> str | bytes:
    """What the runtime takes for a task: the item's text, or for image projects its stored image file's bytes."""
    if project.task_type != Project.TaskType.IMAGE_CLASSIFICATION:
        return task.item.text
    if not task.item.image:
        raise AnnotationError(f"task {task.pk}: its item has no image; nothing was written", task_id=task.pk)
    try:
        return Path(task.item.image).read_bytes()
    except OSError as exc:
        raise AnnotationError(
            f"task {task.pk}: its image cannot be read ({exc.strerror}); nothing was written", task_id=task.pk
        ) from None


def job_payload(job: ProjectJob) -> dict[str, Any]:
    """A project job as the API and the manager page show it."""
    return {
        "id": job.pk,
        "project": job.project_id,
        "kind": job.kind,
        "status": job.status,
        "params": job.params,
        "done": job.done,
        "total": job.total,
        "result": job.result,
        "error": job.error,
        "created_by": job.created_by.get_username() if job.created_by else None,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def recent_jobs(project: Project, kind: str | None = None, limit: int = 20) -> list[ProjectJob]:
    """The project's latest jobs (of ``kind`` when given), newest first; jobs whose worker died show as failed."""
    fail_stale(project)
    jobs = ProjectJob.objects.filter(project=project).select_related("created_by")
    if kind:
        jobs = jobs.filter(kind=kind)
    return list(jobs.order_by("-created_at", "-pk")[:limit])


def candidate_payload(candidate: Candidate) -> dict[str, Any]:
    """A candidate model as the API lists it."""
    model = candidate.model
    return {
        "ref": candidate.ref,
        "version": str(model),
        "task_type": model.task_type,
        "labels": model.manifest.get("labels", []),
        "fits": candidate.fits,
        "reason": candidate.misfit,
    }
