"""Pre-annotation jobs run to their end in this process (``annotation.background.run``, what the worker calls): the
session's real model sets suggestions with progress recorded, the options choose the tasks, and a job that fails
keeps its reason and has written no suggestion. tests/system/test_preannotation_worker.py runs them in a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from annotation import background
from annotation.preannotation import preannotate, start_preannotation
from annotation.services import AnnotationError, update_settings
from datastore import services
from datastore.models import Item, Project, ProjectJob, Task
from modelpack.archive import sha256_file
from tests.annotation_helpers import make_project, user

pytestmark = pytest.mark.django_db

LABELS = ("negative", "neutral", "positive")


def project_of(n: int = 5, labels: tuple[str, ...] = LABELS) -> Project:
    return make_project(labels=labels, overlap=1, n=n, text="sample {i}: the flight was late and the crew rude")


def run(project: Project, ref: str, **options: Any) -> ProjectJob:
    job = start_preannotation(project, user("mona"), ref, **options)
    finished = background.run(job.pk)
    assert finished is not None
    return finished


def suggested(project: Project) -> list[Task]:
    return list(Task.objects.filter(project=project, prediction__isnull=False).order_by("id"))


def test_a_job_sets_suggestions_and_records_its_progress(registered_model) -> None:
    project = project_of(5)
    job = run(project, "sentiment-test")
    assert job.status == ProjectJob.Status.SUCCEEDED, job.error
    assert (job.done, job.total) == (5, 5)
    assert job.result == {"tasks": 5, "model": "sentiment-test:1"}
    assert job.started_at is not None and job.finished_at is not None and job.error == ""
    tasks = suggested(project)
    assert len(tasks) == 5
    assert all(t.prediction is not None and t.prediction["label"] in LABELS for t in tasks)
    assert all(t.prediction is not None and t.prediction["model"] == "sentiment-test:1" for t in tasks)
    assert all(t.uncertainty is not None and 0 <= t.uncertainty <= 1 for t in tasks)
    assert background.run(job.pk) is None  # a message delivered twice runs the job once


def test_progress_is_reported_after_every_batch(registered_model) -> None:
    project = project_of(5)
    calls: list[tuple[int, int | None]] = []
    assert preannotate(project, registered_model, batch_size=2, report=lambda d, t: calls.append((d, t))) == 5
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_the_options_choose_the_tasks(registered_model) -> None:
    project = project_of(4)
    first, second, third, fourth = Task.objects.filter(project=project).order_by("id")
    Task.objects.filter(pk=first.pk).update(status=Task.Status.DONE)
    kept = {"label": "neutral", "confidence": 0.5, "scores": {}, "model": "by-hand"}
    Task.objects.filter(pk=second.pk).update(prediction=kept, uncertainty=0.5)

    job = run(project, "sentiment-test:1", only_open=True, only_unsuggested=True)
    assert job.status == ProjectJob.Status.SUCCEEDED and job.result["tasks"] == 2
    assert [t.pk for t in suggested(project)] == [second.pk, third.pk, fourth.pk]
    assert Task.objects.get(pk=second.pk).prediction == kept  # left alone
    assert Task.objects.get(pk=first.pk).prediction is None  # done: left alone

    job = run(project, "sentiment-test", only_open=False, only_unsuggested=False)
    assert job.result["tasks"] == 4 and len(suggested(project)) == 4
    assert Task.objects.get(pk=second.pk).prediction["model"] == "sentiment-test:1"  # type: ignore[index]


def test_a_missing_archive_fails_the_job_with_its_reason(model_archive) -> None:
    _, sha, manifest = model_archive
    services.register_model_version("gone", "text_classification", "/nonexistent/gone.tar.gz", sha, manifest, None)
    project = project_of(3)
    job = run(project, "gone")
    assert job.status == ProjectJob.Status.FAILED
    assert job.error.startswith("model gone:1 cannot be loaded: ") and "/nonexistent/gone.tar.gz" in job.error
    assert job.error.endswith("; nothing was written")
    assert job.finished_at is not None and job.result == {}
    assert suggested(project) == []


def test_a_corrupt_archive_fails_the_job_with_its_reason(model_archive, tmp_path: Path) -> None:
    archive, _, manifest = model_archive
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(archive.read_bytes()[:200])  # cut short: not a readable tar.gz any more
    services.register_model_version("broken", "text_classification", str(broken), sha256_file(broken), manifest, None)
    project = project_of(3)
    job = run(project, "broken")
    assert job.status == ProjectJob.Status.FAILED
    assert "model broken:1 cannot be loaded" in job.error and "unreadable" in job.error, job.error
    assert suggested(project) == []


def test_a_bad_task_in_a_later_batch_leaves_every_task_without_a_suggestion(registered_model) -> None:
    project = project_of(5)
    last = Task.objects.filter(project=project).order_by("-id").select_related("item").first()
    assert last is not None
    Item.objects.filter(pk=last.item_id).update(text="")  # the model cannot take an empty text
    calls: list[tuple[int, int | None]] = []
    with pytest.raises(AnnotationError) as refused:
        preannotate(project, registered_model, batch_size=2, report=lambda d, t: calls.append((d, t)))
    assert refused.value.reason == (
        f"task {last.pk}: expected a non-empty string, got an empty text; nothing was written"
    )
    assert calls == [(0, 5), (2, 5), (4, 5)]  # two batches were predicted, and none of them was written
    assert suggested(project) == []

    job = run(project, "sentiment-test")  # the same through a job: failed, with the reason
    assert job.status == ProjectJob.Status.FAILED and job.error == refused.value.reason
    assert suggested(project) == []


def test_labels_changed_after_the_start_fail_the_job_before_the_model_runs(registered_model) -> None:
    project = project_of(3, labels=(*LABELS, "mixed"))
    job = start_preannotation(project, user("mona"), "sentiment-test")
    update_settings(project, user("mona"), labels=["negative", "positive", "mixed"])  # nothing labelled yet
    finished = background.run(job.pk)
    assert finished is not None and finished.status == ProjectJob.Status.FAILED
    assert finished.error == (
        "model sentiment-test:1 predicts ['neutral'], which the project's labels "
        "['negative', 'positive', 'mixed'] do not have; nothing was written"
    )
    assert finished.total is None and suggested(project) == []


def test_a_model_removed_from_the_registry_fails_the_job(registered_model) -> None:
    project = project_of(2)
    job = start_preannotation(project, user("mona"), "sentiment-test")
    registered_model.delete()
    finished = background.run(job.pk)
    assert finished is not None and finished.status == ProjectJob.Status.FAILED
    assert finished.error == "model sentiment-test:1 is no longer registered; nothing was written"


def test_a_job_whose_worker_died_is_failed_and_does_not_block_the_next(registered_model, settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from annotation.preannotation import recent_jobs

    project, manager = project_of(3), user("mona")
    long_ago = timezone.now() - timedelta(seconds=settings.PROJECT_JOB_TIME_LIMIT + 120)
    dead = ProjectJob.objects.create(
        project=project, kind="preannotate", status="running", created_by=manager, started_at=long_ago
    )
    alive = ProjectJob.objects.create(
        project=project, kind="preannotate", status="running", created_by=manager, started_at=timezone.now()
    )
    with pytest.raises(AnnotationError, match=f"job {alive.pk} of this project is running"):
        start_preannotation(project, manager, "sentiment-test")
    dead.refresh_from_db()
    assert dead.status == "failed" and "the worker stopped before the job ended" in dead.error
    ProjectJob.objects.filter(pk=alive.pk).update(status="succeeded")
    assert start_preannotation(project, manager, "sentiment-test").status == "queued"
    assert [j.status for j in recent_jobs(project)][-1] == "failed"


def test_a_job_that_cannot_be_queued_fails_with_the_broker_error(
    registered_model, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from celery import current_app

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(current_app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        job = start_preannotation(project_of(3), user("mona"), "sentiment-test")
    job.refresh_from_db()
    assert job.status == "failed" and "could not be queued (Error 111" in job.error
