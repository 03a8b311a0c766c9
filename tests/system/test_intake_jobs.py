"""A large add runs as a background project job on a real Celery worker, with its result or its reason."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.test import APIClient

from annotation import background
from annotation.services import start_project
from datastore.models import ProjectJob, Task
from tests.integration.test_intake import crawl, page


def wait_for(job_id: int, timeout: float = 60) -> ProjectJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ProjectJob.objects.get(pk=job_id)
        if job.status in (ProjectJob.Status.SUCCEEDED, ProjectJob.Status.FAILED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"project job {job_id} did not end")


def test_an_add_in_the_background_ends_with_its_counts_or_its_reason(celery_worker) -> None:
    boss = get_user_model().objects.create(username="boss", is_staff=True)
    project = start_project(boss, "big", "text_classification", ["a", "b"])
    crawl("bg-site", [page(n) for n in range(1, 41)])
    api = APIClient()
    api.force_authenticate(boss)
    url = f"/api/projects/{project.pk}/items/"
    queued = api.post(url, {"filter": {"sources": ["bg-site"], "sample": 30, "seed": 3}, "background": True}, "json")
    assert queued.status_code == 202, queued.content
    job = wait_for(queued.json()["job"])
    assert job.status == ProjectJob.Status.SUCCEEDED, job.error
    assert job.result == {"matching": 30, "skipped": 0, "created": 30, "dry_run": False, "job": None}
    assert (job.done, job.total) == (30, 30) and Task.objects.filter(project=project).count() == 30

    # A job whose source is gone by the time it runs (here: never was) fails with the reason and writes nothing.
    with transaction.atomic():
        gone = background.start(project, ProjectJob.Kind.ADD_ITEMS, {"filter": {"sources": ["gone"]}}, boss)
    failed = wait_for(gone.pk)
    assert failed.status == ProjectJob.Status.FAILED and "no source named 'gone'" in failed.error
    assert Task.objects.filter(project=project).count() == 30
