"""The team and question pages in real headless Chromium against gunicorn and MariaDB: a manager creates an
annotator's account, the annotator sets a password through the invitation link, signs in, sees their progress
and asks a question; the manager answers it on the question page and adds it to the guidelines."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.services import create_project, set_role
from datastore.models import GuidelineVersion, Question
from tests.browser_support import (
    expect_task,
    invite,
    login,
    screenshot_on_failure,
    set_password,
    sign_in_from_password_set,
    snapshot,
    texts,
    user,
)

pytestmark = pytest.mark.browser


def test_an_invited_annotator_asks_and_the_manager_adds_the_answer_to_the_guidelines(
    browser: Any, server: str, request: Any
) -> None:
    from playwright.sync_api import expect

    items = texts("the flight was fine, I guess", "lost my bag again", "great crew")
    project = create_project("tone", "text_classification", ["neg", "pos"], items, guidelines="Label the tone.")
    set_role(project, user("lead"), "manager")

    manager = login(browser, server, "lead", f"/manage/{project.pk}/")
    with screenshot_on_failure(manager, request):
        manager.get_by_test_id("team-link").click()
        manager.wait_for_url(f"{server}/manage/{project.pk}/team/")
        link = invite(manager, server, "newbie")
        expect(manager.get_by_test_id("team-newbie")).to_contain_text("invited")
        snapshot(manager, "team")

    newcomer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    with screenshot_on_failure(newcomer, request):
        newcomer.goto(link)
        expect(newcomer.get_by_test_id("set-password-form")).to_be_visible()
        snapshot(newcomer, "set-password")
        set_password(newcomer, "a fresh long password 31")
        sign_in_from_password_set(newcomer, server, "newbie", "a fresh long password 31")
        expect(newcomer.get_by_test_id(f"tasks-{project.pk}")).to_have_text("3")
        newcomer.get_by_role("link", name="Label").click()
        expect_task(newcomer, "the flight was fine, I guess")
        expect(newcomer.get_by_test_id("progress-mine")).to_have_text("0 of 3 done, 0 today, 3 left")
        newcomer.keyboard.press("1")
        newcomer.keyboard.press("Enter")
        expect_task(newcomer, "lost my bag again")
        expect(newcomer.get_by_test_id("progress-mine")).to_have_text("1 of 3 done, 1 today, 2 left")
        expect(newcomer.get_by_test_id("progress-project")).to_have_text("Project: 1 of 3 tasks finished (33%)")
        newcomer.keyboard.press("?")
        newcomer.get_by_test_id("question-input").fill("Is a lost bag negative even if the crew helped?")
        newcomer.keyboard.press("Enter")
        expect(newcomer.get_by_test_id("status")).to_have_text("Question sent to the project managers.")
        snapshot(newcomer, "label-progress")

    question = Question.objects.get(project=project)
    with screenshot_on_failure(manager, request):
        manager.goto(f"{server}/manage/{project.pk}/")
        manager.get_by_test_id("questions-link").click()
        card = manager.get_by_test_id(f"question-{question.pk}")
        expect(card).to_contain_text("Is a lost bag negative even if the crew helped?")
        expect(card).to_contain_text("asked by newbie")
        expect(manager.get_by_test_id(f"question-task-{question.pk}")).to_have_attribute(
            "href", f"/data/{project.pk}/tasks/{question.task_id}/"
        )
        snapshot(manager, "questions")
        card.get_by_label("Answer").fill("Yes: label the passenger's tone about the bag.")
        manager.get_by_test_id(f"add-to-guidelines-{question.pk}").check()
        card.get_by_role("button", name="Answer").click()
        expect(manager.get_by_test_id("messages")).to_contain_text(
            f"Question #{question.pk} answered and added to the guidelines (version 2)."
        )
        manager.goto(f"{server}/manage/{project.pk}/questions/?state=answered")
        expect(manager.get_by_test_id(f"in-guidelines-{question.pk}")).to_contain_text("version 2")
        manager.get_by_role("link", name="version 2").click()
        expect(manager.get_by_test_id("history-v2")).to_contain_text("Is a lost bag negative")
        expect(manager.get_by_test_id("version-row-1")).to_contain_text("1")  # newbie's answer, under version 1
        snapshot(manager, "guidelines")

        manager.goto(f"{server}/")
        expect(manager.get_by_test_id(f"done-{project.pk}")).to_have_text("1")
        expect(manager.get_by_test_id(f"percent-{project.pk}")).to_have_text("33%")
        snapshot(manager, "home")

    version = GuidelineVersion.objects.get(project=project, number=2)
    question.refresh_from_db()
    assert question.added_to_guidelines == version
    assert version.text.endswith("**A:** Yes: label the passenger's tone about the bag.\n")
    # The annotator's next task shows the new guidelines.
    with screenshot_on_failure(newcomer, request):
        newcomer.reload()
        expect(newcomer.get_by_test_id("guidelines")).to_contain_text("label the passenger's tone about the bag")
