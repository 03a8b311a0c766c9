"""The annotation REST API on the real database: assignment, validation, skips, undo, roles, review."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.services import create_project, set_role
from datastore.models import Annotation, Assignment, Project, Task
from tests.annotation_helpers import client_for, make_project, user

pytestmark = pytest.mark.django_db


def next_id(name: str, project: Project) -> int | None:
    res = client_for(name).post(f"/api/projects/{project.pk}/next/")
    return None if res.status_code == 204 else res.json()["id"]


def next_task_id(name: str, project: Project) -> int:
    """The id of the task handed to ``name``; fails the test when there is none."""
    task_id = next_id(name, project)
    assert task_id is not None, f"{name} was handed no task"
    return task_id


def submit(name: str, task_id: int, value, **extra):
    return client_for(name).post(f"/api/tasks/{task_id}/annotations/", {"value": value, **extra}, format="json")


def test_overlap_counts_held_and_finished_annotations() -> None:
    project = make_project(overlap=2)
    a, b, c = next_task_id("alice", project), next_id("bob", project), next_id("carol", project)
    assert a == b  # two annotators may hold the same task when overlap is 2
    assert c != a  # the third may not
    assert next_id("alice", project) == a  # a held task comes back until it is answered
    assert submit("alice", a, "pos").status_code == 201
    assert next_id("alice", project) not in (a, None)  # never the same task twice


def test_every_task_gets_exactly_overlap_annotations_and_nobody_twice() -> None:
    project = make_project(overlap=2, n=6)
    seen: dict[str, list[int]] = {"alice": [], "bob": [], "carol": []}
    progress = True
    while progress:
        progress = False
        for name in seen:
            task_id = next_id(name, project)
            if task_id is not None:
                assert submit(name, task_id, "neg").status_code == 201
                seen[name].append(task_id)
                progress = True
    assert all(len(ids) == len(set(ids)) for ids in seen.values())
    assert sum(len(ids) for ids in seen.values()) == 12
    assert set(Task.objects.filter(project=project).values_list("status", flat=True)) == {"done"}


def test_label_outside_schema_is_refused_and_nothing_written() -> None:
    project = make_project()
    task_id = next_task_id("alice", project)
    res = submit("alice", task_id, "maybe")
    assert res.status_code == 400 and "not in the project's schema" in res.json()["detail"]
    assert Annotation.objects.count() == 0
    assert Assignment.objects.get(task_id=task_id, annotator=user("alice")).status == "active"


def test_double_submit_and_unassigned_submit_are_refused() -> None:
    project = make_project()
    task_id = next_task_id("alice", project)
    assert submit("alice", task_id, "neg").status_code == 201
    again = submit("alice", task_id, "pos")
    assert again.status_code == 409 and "already annotated" in again.json()["detail"]
    other = Task.objects.exclude(pk=task_id).first()
    assert other is not None
    unassigned = submit("bob", other.pk, "neg")  # bob was never handed it
    assert unassigned.status_code == 409 and "was not handed to you" in unassigned.json()["detail"]
    assert Annotation.objects.count() == 1


def test_a_stale_submission_after_the_hold_expired_is_refused() -> None:
    project = make_project(overlap=1)
    task_id = next_task_id("alice", project)
    Assignment.objects.filter(task_id=task_id).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert next_id("bob", project) == task_id  # the expired hold frees the slot for someone else
    assert submit("bob", task_id, "pos").status_code == 201
    stale = submit("alice", task_id, "neg")
    assert stale.status_code == 409 and "expired" in stale.json()["detail"]
    assert list(Annotation.objects.values_list("annotator__username", flat=True)) == ["bob"]  # bob's work kept


def test_skip_needs_a_reason_and_the_task_goes_to_someone_else() -> None:
    project = make_project(overlap=1, n=2)
    task_id = next_task_id("alice", project)
    alice = client_for("alice")
    blank = alice.post(f"/api/tasks/{task_id}/skip/", {"reason": ""}, format="json")
    assert blank.status_code == 400 and blank.json() == {"reason": ["This field may not be blank."]}
    assert Assignment.objects.get(task_id=task_id, annotator=user("alice")).status == "active"
    assert alice.post(f"/api/tasks/{task_id}/skip/", {"reason": "not English"}, format="json").status_code == 200
    assert Assignment.objects.get(task_id=task_id, annotator=user("alice")).skip_reason == "not English"
    assert next_id("alice", project) != task_id
    assert next_id("bob", project) == task_id


def test_undo_takes_back_the_last_annotation() -> None:
    project = make_project(overlap=1, n=2)
    task_id = next_task_id("alice", project)
    submit("alice", task_id, "neg")
    res = client_for("alice").post(f"/api/projects/{project.pk}/undo/")
    assert res.status_code == 200 and res.json()["task"]["id"] == task_id
    assert Annotation.objects.count() == 0 and Task.objects.get(pk=task_id).status == "open"
    assert submit("alice", task_id, "pos").status_code == 201  # held again, answered again
    nothing = client_for("bob").post(f"/api/projects/{project.pk}/undo/")
    assert nothing.status_code == 409 and nothing.json()["detail"] == "nothing to undo"


def test_undo_leaves_a_task_done_when_the_other_labels_meet_a_lowered_overlap() -> None:
    from annotation.services import update_settings

    project = make_project(overlap=2, n=1)
    task_id = next_task_id("alice", project)
    assert next_task_id("bob", project) == task_id
    assert submit("alice", task_id, "neg").status_code == 201
    assert submit("bob", task_id, "pos").status_code == 201
    update_settings(project, user("mona"), overlap=1)  # two labels for one wanted: still done
    assert client_for("alice").post(f"/api/projects/{project.pk}/undo/").status_code == 200
    task = Task.objects.get(pk=task_id)
    assert (task.annotation_count, task.status) == (1, "done")  # bob's label is enough: not stranded open
    assert next_id("carol", project) is None
    assert submit("alice", task_id, "pos").status_code == 201  # alice still holds it and may answer again
    assert Task.objects.get(pk=task_id).annotation_count == 2


def test_an_adjudicated_task_cannot_be_undone() -> None:
    project = make_project(overlap=1, n=1)
    task_id = next_task_id("alice", project)
    assert submit("alice", task_id, "neg").status_code == 201
    rita = client_for("rita")
    assert rita.post(f"/api/tasks/{task_id}/adjudicate/", {"value": "pos"}, format="json").status_code == 200
    res = client_for("alice").post(f"/api/projects/{project.pk}/undo/")
    assert res.status_code == 409
    assert res.json() == {"detail": "the task was adjudicated; its annotations are final", "task": task_id}
    task = Task.objects.get(pk=task_id)
    assert (task.final_value, task.status, task.annotation_count) == ("pos", "done", 1)
    assert list(Annotation.objects.values_list("value", flat=True)) == ["neg"], "the annotation was kept"
    assert Assignment.objects.get(task_id=task_id, annotator=user("alice")).status == "submitted"


def test_spans_are_checked_against_the_text() -> None:
    project = make_project("spans", labels=("PER", "ORG"), overlap=1, n=1, text="Ada Lovelace met Babbage {i}")
    task_id = next_task_id("alice", project)
    outside = submit("alice", task_id, [{"start": 0, "end": 99, "label": "PER"}])
    assert outside.status_code == 400 and "outside the text" in outside.json()["detail"]
    overlapping = submit(
        "alice", task_id, [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 12, "label": "ORG"}]
    )
    assert overlapping.status_code == 400 and "overlap" in overlapping.json()["detail"]
    ok = submit("alice", task_id, [{"start": 17, "end": 24, "label": "PER"}, {"start": 0, "end": 12, "label": "PER"}])
    assert ok.status_code == 201
    assert ok.json()["value"] == [{"start": 0, "end": 12, "label": "PER"}, {"start": 17, "end": 24, "label": "PER"}]


def test_multi_label_answers() -> None:
    project = make_project("multi_label", labels=("a", "b", "c"), overlap=1, n=1)
    task_id = next_task_id("alice", project)
    unknown = submit("alice", task_id, ["a", "z"])
    assert unknown.status_code == 400
    assert unknown.json()["detail"] == "labels ['z'] are not in the project's schema ['a', 'b', 'c']"
    not_names = submit("alice", task_id, [{"a": 1}])
    assert not_names.status_code == 400
    assert not_names.json()["detail"] == "a multi-label answer is a list of label names"
    assert Annotation.objects.count() == 0
    res = submit("alice", task_id, ["c", "a", "a"])
    assert res.status_code == 201 and res.json()["value"] == ["a", "c"]


def test_review_roles_disagreements_adjudication_and_agreement() -> None:
    project = make_project(overlap=2, n=2)
    for name, labels in (("alice", ["neg", "neg"]), ("bob", ["neg", "pos"])):
        for label in labels:
            submit(name, next_task_id(name, project), label)
    denied = client_for("alice").get(f"/api/projects/{project.pk}/disagreements/")
    assert denied.status_code == 403 and "needs the role reviewer or manager" in denied.json()["detail"]
    rita = client_for("rita")
    disagreements = rita.get(f"/api/projects/{project.pk}/disagreements/").json()
    assert len(disagreements) == 1
    task_id = disagreements[0]["task"]
    by_annotator = client_for("alice").post(f"/api/tasks/{task_id}/adjudicate/", {"value": "pos"}, format="json")
    assert by_annotator.status_code == 403
    assert by_annotator.json()["detail"] == "this needs the role reviewer or manager in project 'p-text_classification'"
    outside = rita.post(f"/api/tasks/{task_id}/adjudicate/", {"value": "nope"}, format="json")
    assert outside.status_code == 400
    assert outside.json()["detail"] == "label 'nope' is not in the project's schema ['neg', 'pos']"
    assert Task.objects.get(pk=task_id).final_value is None, "refusals set no final label"
    assert rita.post(f"/api/tasks/{task_id}/adjudicate/", {"value": "pos"}, format="json").status_code == 200
    assert Task.objects.get(pk=task_id).final_value == "pos"
    assert rita.get(f"/api/projects/{project.pk}/disagreements/").json() == []
    agreement = rita.get(f"/api/projects/{project.pk}/agreement/").json()
    assert agreement["annotators"] == 2 and agreement["units"] == 2
    assert agreement["pairs"]["alice|bob"]["units"] == 2
    dashboard = client_for("mona").get(f"/api/projects/{project.pk}/dashboard/").json()
    assert dashboard["done"] == 2 and dashboard["adjudicated"] == 1 and dashboard["annotations"] == 4


def test_question_board() -> None:
    project = make_project()
    alice, mona = client_for("alice"), client_for("mona")
    asked = alice.post(f"/api/projects/{project.pk}/questions/", {"text": "Is sarcasm negative?"}, format="json")
    assert asked.status_code == 201
    qid = asked.json()["id"]
    assert alice.post(f"/api/questions/{qid}/answer/", {"answer": "yes"}, format="json").status_code == 403
    assert (
        mona.post(f"/api/questions/{qid}/answer/", {"answer": "Yes, label it neg."}, format="json").status_code == 200
    )
    answered = alice.get(f"/api/projects/{project.pk}/").json()["answered_questions"]
    assert answered == [{"id": qid, "question": "Is sarcasm negative?", "answer": "Yes, label it neg."}]


def test_endpoints_deny_anonymous_non_members_and_non_annotators() -> None:
    project = make_project()
    assert APIClient().post(f"/api/projects/{project.pk}/next/").status_code in (401, 403)
    assert client_for("mallory").post(f"/api/projects/{project.pk}/next/").status_code == 404
    assert client_for("mallory").get("/api/projects/").json() == []
    assert client_for("rita").post(f"/api/projects/{project.pk}/next/").status_code == 403  # reviewers review


def test_preannotation_suggests_and_orders_the_queue_by_uncertainty(registered_model) -> None:
    from annotation.preannotation import preannotate

    project = make_project(
        labels=("negative", "neutral", "positive"),
        overlap=1,
        n=6,
        text="sample {i}: the flight was late and the crew rude, or maybe fine",
    )
    project.queue_order = Project.QueueOrder.UNCERTAINTY
    project.save()
    assert preannotate(project, registered_model) == 6
    tasks = list(Task.objects.filter(project=project))
    assert all(
        t.prediction is not None
        and t.prediction["label"] in project.labels
        and t.prediction["model"] == "sentiment-test:1"
        for t in tasks
    )
    most_uncertain = max(tasks, key=lambda t: (t.uncertainty, -t.pk))
    assert most_uncertain.prediction is not None
    res = client_for("alice").post(f"/api/projects/{project.pk}/next/").json()
    assert res["id"] == most_uncertain.pk and res["prediction"]["label"] == most_uncertain.prediction["label"]


def test_a_second_adjudication_needs_override() -> None:
    project = make_project(overlap=1, n=1)
    task_id = next_task_id("alice", project)
    submit("alice", task_id, "neg")
    rita = client_for("rita")
    assert rita.post(f"/api/tasks/{task_id}/adjudicate/", {"value": "pos"}, format="json").status_code == 200
    again = rita.post(f"/api/tasks/{task_id}/adjudicate/", {"value": "neg"}, format="json")
    assert again.status_code == 409 and "override" in again.json()["detail"]
    assert Task.objects.get(pk=task_id).final_value == "pos"
    forced = rita.post(f"/api/tasks/{task_id}/adjudicate/", {"value": "neg", "override": True}, format="json")
    assert forced.status_code == 200 and Task.objects.get(pk=task_id).final_value == "neg"


def test_malformed_bodies_are_4xx_not_500() -> None:
    project = make_project(overlap=1, n=1)
    task_id = next_task_id("alice", project)
    alice = client_for("alice")
    for url in (f"/api/tasks/{task_id}/skip/", f"/api/projects/{project.pk}/questions/"):
        listed = alice.post(url, [1, 2], format="json")
        assert listed.status_code == 400, url
        assert listed.json() == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}, url
    bad_task = alice.post(f"/api/projects/{project.pk}/questions/", {"text": "?", "task": "abc"}, format="json")
    assert bad_task.status_code == 400 and bad_task.json() == {"task": ["A valid integer is required."]}
    negative = submit("alice", task_id, "neg", lead_time=-1)
    assert negative.status_code == 400
    assert negative.json() == {"lead_time": ["Ensure this value is greater than or equal to 0.0."]}
    assert Annotation.objects.count() == 0
    assert not project.questions.exists()
    assert Assignment.objects.get(task_id=task_id, annotator=user("alice")).status == "active", "not skipped"


def test_span_offsets_must_be_integers_not_booleans() -> None:
    project = make_project("spans", labels=("PER",), overlap=1, n=1, text="Ada met Bob {i}")
    task_id = next_task_id("alice", project)
    res = submit("alice", task_id, [{"start": 0, "end": True, "label": "PER"}])
    assert res.status_code == 400 and "integers" in res.json()["detail"]


def test_multi_label_agreement_is_reported_per_label() -> None:
    project = make_project("multi_label", labels=("a", "b"), overlap=2, n=3)
    for name, answers in (("alice", [["a"], ["a", "b"], []]), ("bob", [["a"], ["b"], []])):
        for value in answers:
            submit(name, next_task_id(name, project), value)
    agreement = client_for("rita").get(f"/api/projects/{project.pk}/agreement/").json()
    assert set(agreement["per_label_alpha"]) == {"a", "b"}
    assert agreement["units"] == 6  # 3 tasks x 2 labels


def test_cached_token_authentication_forgets_revoked_tokens_and_inactive_users(settings) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    settings.TOKEN_CACHE_SECONDS = 60
    project = make_project()
    token = Token.objects.create(user=user("alice"))
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(f"/api/projects/{project.pk}/").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/projects/{project.pk}/").status_code == 200
    assert not any("authtoken_token" in q["sql"] for q in queries.captured_queries)  # served from the cache

    alice = user("alice")
    alice.is_active = False
    alice.save()  # this process forgets the user's cached tokens at once
    assert client.get(f"/api/projects/{project.pk}/").status_code == 401
    alice.is_active = True
    alice.save()
    assert client.get(f"/api/projects/{project.pk}/").status_code == 200
    token.delete()
    assert client.get(f"/api/projects/{project.pk}/").status_code == 401


def test_token_cache_can_be_turned_off(settings) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    settings.TOKEN_CACHE_SECONDS = 0
    project = make_project()
    client = APIClient(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user('alice')).key}")
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/api/projects/{project.pk}/").status_code == 200
        assert any("authtoken_token" in q["sql"] for q in queries.captured_queries)


def test_the_project_list_costs_the_same_queries_for_one_project_or_many() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_project()
    client = client_for("alice")
    with CaptureQueriesContext(connection) as one:
        assert len(client.get("/api/projects/").json()) == 1
    for i in range(4):
        project = create_project(f"more-{i}", "text_classification", ["a", "b"], [], members=[user("alice")])
        set_role(project, user("alice"), "reviewer" if i % 2 else "annotator")
    with CaptureQueriesContext(connection) as five:
        listed = client.get("/api/projects/").json()
    assert len(listed) == 5 and len(five.captured_queries) == len(one.captured_queries)
    assert [p["role"] for p in listed] == ["annotator", "annotator", "reviewer", "annotator", "reviewer"]
