"""The question board on the real database: managers and reviewers see and answer questions, jump to the task,
add an answer to the guidelines in one step; annotators cannot answer."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.services import answer, ask
from datastore.models import GuidelineVersion, Question, Task
from tests.annotation_helpers import client_for, make_project, user

pytestmark = pytest.mark.django_db


def page_client(name: str) -> Client:
    client = Client()
    client.force_login(user(name))
    return client


def test_managers_and_reviewers_see_open_and_answered_questions_with_their_task() -> None:
    project = make_project(n=2)
    task = Task.objects.filter(project=project).order_by("id").first()
    assert task is not None
    open_q = ask(project, user("alice"), "Is sarcasm negative?", task.pk)
    done_q = ask(project, user("bob"), "What about emoji?")
    answer(done_q, user("mona"), "Ignore them.")

    for name in ("mona", "rita"):
        html = page_client(name).get(f"/manage/{project.pk}/questions/").content.decode()
        assert "Is sarcasm negative?" in html and "What about emoji?" not in html  # open ones by default
        assert f'href="/data/{project.pk}/tasks/{task.pk}/"' in html and "alice" in html
    answered = page_client("rita").get(f"/manage/{project.pk}/questions/?state=answered").content.decode()
    assert "What about emoji?" in answered and "Ignore them." in answered and "Is sarcasm" not in answered
    every = page_client("rita").get(f"/manage/{project.pk}/questions/?state=all").content.decode()
    assert f"question-{open_q.pk}" in every and f"question-{done_q.pk}" in every
    assert page_client("alice").get(f"/manage/{project.pk}/questions/").status_code == 403
    assert page_client("nobody").get(f"/manage/{project.pk}/questions/").status_code == 404


def test_answering_with_the_checkbox_adds_the_answer_to_the_guidelines_as_a_new_version() -> None:
    project = make_project(n=1, guidelines="Label the tone.")
    question = ask(project, user("alice"), "Is sarcasm negative?")
    res = page_client("rita").post(
        f"/manage/{project.pk}/questions/{question.pk}/answer/", {"answer": "Yes, neg.", "add_to_guidelines": "on"}
    )
    assert res.status_code == 302
    question.refresh_from_db()
    project.refresh_from_db()
    assert question.answer == "Yes, neg." and question.answered_by == user("rita")
    assert question.added_to_guidelines is not None and question.added_to_guidelines.number == 2
    assert project.guidelines == "Label the tone.\n\n**Q:** Is sarcasm negative?\n\n**A:** Yes, neg.\n"
    assert question.added_to_guidelines.text == project.guidelines
    # The label page's project record shows the new text.
    assert "Yes, neg." in client_for("alice").get(f"/api/projects/{project.pk}/").json()["guidelines"]


def test_an_answered_question_is_added_once_and_an_open_one_not_at_all() -> None:
    project = make_project(n=1, guidelines="")
    question = ask(project, user("alice"), "Ties?")
    url = f"/api/projects/{project.pk}/questions/{question.pk}/guidelines/"
    res = client_for("mona").post(url)
    assert res.status_code == 409 and "answer the question" in res.json()["detail"]
    answer(question, user("mona"), "Pick the first.")
    res = client_for("mona").post(url)
    assert res.status_code == 200 and res.json()["guideline_version"] == 2
    assert client_for("mona").post(url).status_code == 409  # already in
    assert GuidelineVersion.objects.filter(project=project).count() == 2

    # The page's button says the same.
    page = page_client("mona")
    shown = page.post(f"/manage/{project.pk}/questions/{question.pk}/guidelines/", follow=True)
    assert "already in the guidelines" in shown.content.decode()


def test_annotators_cannot_answer_or_add_to_guidelines() -> None:
    project = make_project(n=1)
    question = ask(project, user("bob"), "Unclear?")
    res = client_for("alice").post(f"/api/questions/{question.pk}/answer/", {"answer": "mine"}, format="json")
    assert res.status_code == 403
    page = page_client("alice").post(f"/manage/{project.pk}/questions/{question.pk}/answer/", {"answer": "mine"})
    assert page.status_code == 403
    res = client_for("alice").post(f"/api/projects/{project.pk}/questions/{question.pk}/guidelines/")
    assert res.status_code == 403
    question.refresh_from_db()
    assert question.answer == "" and question.added_to_guidelines is None
    # An empty answer is refused whoever sends it, and nothing is written.
    page_client("mona").post(f"/manage/{project.pk}/questions/{question.pk}/answer/", {"answer": " "})
    assert Question.objects.get(pk=question.pk).answer == ""
