"""Pre-annotation through the REST API, run by a real Celery worker on the ``projects`` queue against MariaDB: the
suggestions land with progress recorded, and a job whose model archive is gone ends failed with its reason and
no suggestion written."""

from __future__ import annotations

import time
from typing import Any

from rest_framework.test import APIClient

from datastore import services
from datastore.models import Project, Task
from tests.annotation_helpers import client_for, make_project

LABELS = ("negative", "neutral", "positive")


def wait_finished(client: APIClient, job_id: int, timeout: float = 90) -> dict[str, Any]:
    """The job once it has succeeded or failed, seen through the job API."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/project-jobs/{job_id}/").json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"project job {job_id} did not finish in {timeout} s: {job}")


def project_of(n: int) -> Project:
    return make_project(labels=LABELS, overlap=1, n=n, text="sample {i}: the crew was kind, the seat broken")


def test_the_worker_runs_pre_annotation_and_records_progress(celery_worker, live_env, model_archive) -> None:
    archive, sha, manifest = model_archive
    services.register_model_version("sentiment", "text_classification", str(archive), sha, manifest, None)
    services.registry.promote("sentiment", 1, "production")
    project = project_of(300)  # more than one batch of 256
    mona = client_for("mona")
    started = mona.post(f"/api/projects/{project.pk}/preannotate/", {"model": "sentiment@production"}, format="json")
    assert started.status_code == 202, started.json()
    assert started.json()["status"] == "queued"
    job = wait_finished(mona, started.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert (job["done"], job["total"]) == (300, 300)
    assert job["result"] == {"tasks": 300, "model": "sentiment:1"}
    tasks = list(Task.objects.filter(project=project))
    assert all(t.prediction is not None and t.prediction["label"] in LABELS for t in tasks)
    assert all(t.uncertainty is not None and 0 <= t.uncertainty <= 1 for t in tasks)
    listed = mona.get(f"/api/projects/{project.pk}/jobs/?kind=preannotate").json()
    assert [j["id"] for j in listed] == [job["id"]] and listed[0]["status"] == "succeeded"


def test_a_job_whose_archive_is_gone_fails_in_the_worker_and_writes_nothing(
    celery_worker, live_env, model_archive
) -> None:
    _, sha, manifest = model_archive
    services.register_model_version("lost", "text_classification", "/nonexistent/lost.tar.gz", sha, manifest, None)
    project = project_of(5)
    mona = client_for("mona")
    started = mona.post(f"/api/projects/{project.pk}/preannotate/", {"model": "lost"}, format="json")
    assert started.status_code == 202
    job = wait_finished(mona, started.json()["id"])
    assert job["status"] == "failed"
    assert job["error"].startswith("model lost:1 cannot be loaded") and job["error"].endswith("nothing was written")
    assert job["finished_at"] is not None and job["result"] == {}
    assert not Task.objects.filter(project=project, prediction__isnull=False).exists()
    assert not Task.objects.filter(project=project, uncertainty__isnull=False).exists()
