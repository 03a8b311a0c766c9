"""The manager page's pre-annotation section (Django's test client): the models that fit and why the others do
not, a refused start that shows its reason and makes no job, a started job, the queue order, and the refusals
for anyone who is not a manager."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from datastore import services
from datastore.models import Project, ProjectJob
from tests.annotation_helpers import make_project, user

pytestmark = pytest.mark.django_db

LABELS = ("negative", "neutral", "positive")


def client(name: str) -> Client:
    c = Client()
    c.force_login(user(name))
    return c


def fake_model(name: str, task_type: str, labels: list[str]) -> Any:
    return services.register_model_version(
        name, task_type, "/nonexistent/model.tar.gz", "0" * 64, {"labels": labels}, None, version=1
    )


@pytest.fixture
def project() -> Project:
    project = make_project(labels=LABELS, overlap=1, n=3)
    fake_model("sentiment", "text_classification", list(LABELS))
    fake_model("pictures", "image_classification", list(LABELS))
    fake_model("binary", "text_classification", ["negative", "positive", "sarcastic"])
    return project


def test_the_section_lists_the_models_that_fit_and_why_the_others_do_not(project: Project) -> None:
    page = client("mona").get(f"/manage/{project.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="preannotation"' in html and 'data-testid="preannotate-form"' in html
    assert '<option value="sentiment:1">sentiment:1</option>' in html
    assert '<option value="pictures:1" disabled>pictures:1: does not fit</option>' in html
    assert "model pictures:1 is for image_classification, the project is text_classification" in html
    assert "model binary:1 predicts [&#x27;sarcastic&#x27;], which the project" in html
    assert "0 open task(s) have a suggestion" in html and "needs suggestions" in html
    assert "No jobs yet." in html


def test_a_model_that_does_not_fit_is_refused_on_the_page(project: Project) -> None:
    res = client("mona").post(f"/manage/{project.pk}/preannotate/", {"pre-model": "pictures:1", "pre-only_open": "on"})
    assert res.status_code == 400
    assert (
        "is for image_classification, the project is text_classification; nothing was started" in res.content.decode()
    )
    assert not ProjectJob.objects.exists()


def test_a_manager_starts_a_job_from_the_page(project: Project) -> None:
    c = client("mona")
    res = c.post(f"/manage/{project.pk}/preannotate/", {"pre-model": "sentiment:1", "pre-only_unsuggested": "on"})
    assert res.status_code == 302 and res["Location"] == f"/manage/{project.pk}/"
    job = ProjectJob.objects.get(project=project)
    assert job.kind == "preannotate" and job.created_by == user("mona")
    assert job.params["only_open"] is False and job.params["only_unsuggested"] is True  # unticked: all tasks
    page = c.get(f"/manage/{project.pk}/").content.decode()
    assert f"Pre-annotation job {job.pk} with sentiment:1 is queued" in page
    assert f'data-job-id="{job.pk}" data-status="queued"' in page
    assert f"/api/projects/{project.pk}/jobs/?limit=10" in page  # the page polls while the job is unfinished
    # A second start while it is queued is refused with the reason.
    again = c.post(f"/manage/{project.pk}/preannotate/", {"pre-model": "sentiment:1"})
    assert (
        again.status_code == 400 and f"pre-annotation job {job.pk} of this project is queued" in again.content.decode()
    )


def test_a_failed_job_shows_its_reason(project: Project) -> None:
    ProjectJob.objects.create(
        project=project, kind="preannotate", status="failed", error="model x:1 cannot be loaded: gone"
    )
    page = client("mona").get(f"/manage/{project.pk}/").content.decode()
    assert "failed: model x:1 cannot be loaded: gone" in page
    assert "/jobs/?limit=10" not in page  # nothing to follow: no polling


def test_an_unknown_model_is_refused_on_the_page(project: Project) -> None:
    res = client("mona").post(f"/manage/{project.pk}/preannotate/", {"pre-model": "nope"})
    assert res.status_code == 400 and "Select a valid choice" in res.content.decode()
    assert not ProjectJob.objects.exists()


def test_the_queue_order_is_set_from_the_section(project: Project) -> None:
    c = client("mona")
    res = c.post(f"/manage/{project.pk}/queue-order/", {"order-queue_order": "uncertainty"}, follow=True)
    assert res.status_code == 200
    html = res.content.decode()
    assert "Queue order: most uncertain model prediction first." in html
    assert "No open task has a suggestion yet" in html
    project.refresh_from_db()
    assert project.queue_order == Project.QueueOrder.UNCERTAINTY
    bad = c.post(f"/manage/{project.pk}/queue-order/", {"order-queue_order": "random"})
    assert bad.status_code == 400 and "Select a valid choice" in bad.content.decode()


@pytest.mark.parametrize("name", ["alice", "rita"])  # an annotator, a reviewer
def test_only_managers_start_jobs_or_set_the_order(project: Project, name: str) -> None:
    c = client(name)
    assert c.post(f"/manage/{project.pk}/preannotate/", {"pre-model": "sentiment:1"}).status_code == 403
    assert c.post(f"/manage/{project.pk}/queue-order/", {"order-queue_order": "uncertainty"}).status_code == 403
    assert client("mallory").post(f"/manage/{project.pk}/preannotate/", {"pre-model": "sentiment:1"}).status_code == 404
    assert not ProjectJob.objects.exists()
    project.refresh_from_db()
    assert project.queue_order == Project.QueueOrder.SEQUENTIAL
