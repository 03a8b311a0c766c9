"""POST /api/projects/ID/preannotate/: a manager starts pre-annotation as a background job (202 with the job); every
refusal comes before anything runs, says why, and creates no job. The jobs run in tests/integration/
test_preannotation_jobs.py (in this process) and tests/system/test_preannotation_worker.py (a Celery worker)."""

from __future__ import annotations

from typing import Any

import pytest

from datastore import services
from datastore.models import Project, ProjectJob, Task
from tests.annotation_helpers import client_for, make_project

pytestmark = pytest.mark.django_db

LABELS = ("negative", "neutral", "positive")  # what the session's sentiment-test model predicts


def url(project: Project) -> str:
    return f"/api/projects/{project.pk}/preannotate/"


def post(name: str, project: Project, body: dict[str, Any]) -> Any:
    return client_for(name).post(url(project), body, format="json")


def untouched(project: Project) -> bool:
    """No task of the project has a suggestion or an uncertainty, and no job was made."""
    tasks = list(Task.objects.filter(project=project))
    no_suggestion = bool(tasks) and all(t.prediction is None and t.uncertainty is None for t in tasks)
    return no_suggestion and not ProjectJob.objects.filter(project=project).exists()


def fake_model(name: str, task_type: str, labels: list[str], version: int = 1) -> Any:
    """A registered version whose archive is never opened: the refusals come before the model is loaded."""
    return services.register_model_version(
        name, task_type, "/nonexistent/model.tar.gz", "0" * 64, {"labels": labels}, None, version=version
    )


def test_a_manager_starts_a_job_for_the_version_the_reference_names_now() -> None:
    project = make_project(labels=LABELS, overlap=1, n=3)
    fake_model("sentiment", "text_classification", list(LABELS))
    second = fake_model("sentiment", "text_classification", list(LABELS), version=2)
    services.registry.promote("sentiment", 1, "production")
    res = post("mona", project, {"model": "sentiment", "only_unsuggested": True})
    assert res.status_code == 202, res.json()
    job = ProjectJob.objects.get(project=project)
    body = res.json()
    assert body["id"] == job.pk and body["kind"] == "preannotate" and body["status"] == "queued"
    assert body["created_by"] == "mona" and body["done"] == 0 and body["error"] == ""
    assert job.params == {
        "model": "sentiment",
        "model_version": second.pk,  # the latest version, pinned when the job is made
        "resolved": "sentiment:2",
        "only_open": True,
        "only_unsuggested": True,
    }
    # One pre-annotation at a time per project.
    again = post("mona", project, {"model": "sentiment@production"})
    assert again.status_code == 409
    assert again.json()["detail"] == f"pre-annotation job {job.pk} of this project is queued; wait for it"
    assert ProjectJob.objects.filter(project=project).count() == 1
    # The job is followed through the job API.
    assert client_for("mona").get(f"/api/project-jobs/{job.pk}/").json()["status"] == "queued"
    listed = client_for("mona").get(f"/api/projects/{project.pk}/jobs/").json()
    assert [j["id"] for j in listed] == [job.pk]


def test_an_alias_is_pinned_to_the_version_it_names() -> None:
    project = make_project(labels=LABELS, overlap=1, n=2)
    first = fake_model("sentiment", "text_classification", list(LABELS))
    fake_model("sentiment", "text_classification", list(LABELS), version=2)
    services.registry.promote("sentiment", 1, "production")
    res = post("mona", project, {"model": "sentiment@production"})
    assert res.status_code == 202
    assert res.json()["params"]["model_version"] == first.pk and res.json()["params"]["resolved"] == "sentiment:1"


@pytest.mark.parametrize("name", ["alice", "rita"])  # an annotator, a reviewer
def test_only_a_manager_may_preannotate(name: str) -> None:
    project = make_project(n=2)
    fake_model("fits", "text_classification", ["neg", "pos"])
    res = post(name, project, {"model": "nope"})  # the role is checked before the body: 403, not 404
    assert res.status_code == 403
    assert res.json()["detail"] == "this needs the role manager in project 'p-text_classification'"
    assert post(name, project, {"model": "fits"}).status_code == 403
    assert client_for(name).get(url(project)).status_code == 403
    assert client_for(name).get(f"/api/projects/{project.pk}/jobs/").status_code == 403
    assert untouched(project)


def test_a_non_member_does_not_see_the_project_or_its_jobs() -> None:
    project = make_project(n=2)
    res = post("mallory", project, {"model": "nope"})
    assert res.status_code == 404 and res.json() == {"detail": "no such project"}
    assert client_for("mallory").get(f"/api/projects/{project.pk}/jobs/").status_code == 404
    job = ProjectJob.objects.create(project=project, kind=ProjectJob.Kind.PREANNOTATE)
    assert client_for("mallory").get(f"/api/project-jobs/{job.pk}/").status_code == 404
    assert client_for("alice").get(f"/api/project-jobs/{job.pk}/").status_code == 403
    assert client_for("mona").get("/api/project-jobs/999999/").status_code == 404


def test_an_unknown_model_is_404() -> None:
    project = make_project(n=2)
    fake_model("known", "text_classification", ["neg", "pos"])
    for ref, detail in (
        ("nope", "unknown model 'nope'"),
        ("known:2", "unknown model 'known:2'"),
        ("known@production", "model 'known' has no alias 'production'"),
    ):
        res = post("mona", project, {"model": ref})
        assert res.status_code == 404 and res.json() == {"detail": detail}, ref
    assert untouched(project)


def test_a_missing_model_field_is_400() -> None:
    project = make_project(n=2)
    res = post("mona", project, {})
    assert res.status_code == 400 and res.json() == {"model": ["This field is required."]}
    assert untouched(project)


def test_a_model_for_another_task_type_is_refused() -> None:
    project = make_project(n=2)
    fake_model("pictures", "image_classification", ["neg", "pos"])  # same labels: only the task type differs
    res = post("mona", project, {"model": "pictures"})
    assert res.status_code == 400
    assert res.json()["detail"] == (
        "model pictures:1 is for image_classification, the project is text_classification; nothing was started"
    )
    assert untouched(project)


def test_a_model_that_predicts_labels_the_project_lacks_is_refused() -> None:
    project = make_project(n=2)
    fake_model("threeway", "text_classification", ["neg", "neutral", "pos"])  # same task type: one label more
    res = post("mona", project, {"model": "threeway:1"})
    assert res.status_code == 400
    assert res.json()["detail"] == (
        "model threeway:1 predicts ['neutral'], which the project's labels ['neg', 'pos'] do not have; "
        "nothing was started"
    )
    assert untouched(project)


def test_a_model_without_labels_in_its_manifest_is_refused() -> None:
    project = make_project(n=2)
    fake_model("blank", "text_classification", [])
    res = post("mona", project, {"model": "blank"})
    assert res.status_code == 400
    assert res.json()["detail"] == "model blank:1 names no labels in its manifest; nothing was started"
    assert untouched(project)


def test_a_model_that_knows_fewer_labels_fits() -> None:
    project = make_project(labels=("neg", "pos", "unsure"), n=2)
    fake_model("binary", "text_classification", ["pos", "neg"])  # a subset, in another order
    assert post("mona", project, {"model": "binary"}).status_code == 202


def test_the_candidates_say_why_the_others_do_not_fit() -> None:
    project = make_project(n=2)
    fake_model("binary", "text_classification", ["neg", "pos"])
    fake_model("pictures", "image_classification", ["neg", "pos"])
    services.registry.promote("binary", 1, "production")
    rows = client_for("mona").get(url(project)).json()
    assert [(r["ref"], r["fits"]) for r in rows] == [
        ("binary:1", True),
        ("binary@production", True),
        ("pictures:1", False),
    ]
    assert rows[2]["reason"] == "model pictures:1 is for image_classification, the project is text_classification"
    assert rows[0] == {
        "ref": "binary:1",
        "version": "binary:1",
        "task_type": "text_classification",
        "labels": ["neg", "pos"],
        "fits": True,
        "reason": "",
    }


def test_the_job_list_refuses_a_bad_kind_or_limit() -> None:
    project = make_project(n=2)
    client = client_for("mona")
    assert client.get(f"/api/projects/{project.pk}/jobs/?kind=nope").status_code == 400
    for limit in ("0", "101", "x", "²"):
        assert client.get(f"/api/projects/{project.pk}/jobs/?limit={limit}").status_code == 400, limit
    assert client.get(f"/api/projects/{project.pk}/jobs/?kind=preannotate&limit=5").json() == []
