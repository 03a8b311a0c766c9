"""POST /api/projects/ID/preannotate/: a manager stores a registered model's suggestions on the open tasks; every
refusal says why and writes no suggestion."""

from __future__ import annotations

from typing import Any

import pytest

from datastore import services
from datastore.models import Project, Task
from tests.annotation_helpers import client_for, make_project

pytestmark = pytest.mark.django_db

LABELS = ("negative", "neutral", "positive")  # what the session's sentiment-test model predicts


def url(project: Project) -> str:
    return f"/api/projects/{project.pk}/preannotate/"


def post(name: str, project: Project, body: dict[str, Any]) -> Any:
    return client_for(name).post(url(project), body, format="json")


def untouched(project: Project) -> bool:
    """No task of the project has a suggestion or an uncertainty."""
    tasks = list(Task.objects.filter(project=project))
    return bool(tasks) and all(t.prediction is None and t.uncertainty is None for t in tasks)


def fake_model(name: str, task_type: str, labels: list[str]) -> Any:
    """A registered version whose archive is never opened: the refusals come before the model is loaded."""
    return services.register_model_version(
        name, task_type, "/nonexistent/model.tar.gz", "0" * 64, {"labels": labels}, None, version=1
    )


def test_a_manager_stores_suggestions_on_every_open_task(registered_model) -> None:
    project = make_project(labels=LABELS, overlap=1, n=3, text="the flight {i} was late")
    res = post("mona", project, {"model": "sentiment-test"})
    assert res.status_code == 200 and res.json() == {"tasks": 3, "model": "sentiment-test:1"}
    tasks = list(Task.objects.filter(project=project))
    assert all(t.prediction is not None and t.prediction["model"] == "sentiment-test:1" for t in tasks)
    assert all(t.uncertainty is not None and 0 <= t.uncertainty <= 1 for t in tasks)


@pytest.mark.parametrize("name", ["alice", "rita"])  # an annotator, a reviewer
def test_only_a_manager_may_preannotate(name: str) -> None:
    project = make_project(n=2)
    fake_model("fits", "text_classification", ["neg", "pos"])
    res = post(name, project, {"model": "nope"})  # the role is checked before the body: 403, not 404
    assert res.status_code == 403
    assert res.json()["detail"] == "this needs the role manager in project 'p-text_classification'"
    assert post(name, project, {"model": "fits"}).status_code == 403
    assert untouched(project)


def test_a_non_member_does_not_see_the_project() -> None:
    project = make_project(n=2)
    res = post("mallory", project, {"model": "nope"})
    assert res.status_code == 404 and res.json() == {"detail": "no such project"}
    assert untouched(project)


def test_an_unknown_model_is_404() -> None:
    project = make_project(n=2)
    fake_model("known", "text_classification", ["neg", "pos"])
    for ref, detail in (("nope", "unknown model 'nope'"), ("known:2", "unknown model 'known:2'")):
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
    assert res.json()["detail"] == "model pictures:1 is for image_classification, the project is text_classification"
    assert untouched(project)


def test_a_model_with_other_labels_is_refused() -> None:
    project = make_project(n=2)
    fake_model("threeway", "text_classification", list(LABELS))  # same task type: only the labels differ
    res = post("mona", project, {"model": "threeway:1"})
    assert res.status_code == 400
    assert res.json()["detail"] == "model threeway:1 predicts ['negative', 'neutral', 'positive'], not ['neg', 'pos']"
    assert untouched(project)
