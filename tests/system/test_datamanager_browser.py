"""The data manager in real headless Chromium against gunicorn and MariaDB: a manager filters a project's tasks
for disagreements, selects one by keyboard and sends it back with a reason, then opens its history."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.services import create_project, set_role
from datastore.models import RelabelRequest, Task
from tests.browser_support import annotate_by_api, login, screenshot_on_failure, snapshot, texts, user

pytestmark = pytest.mark.browser


def test_filter_disagreements_and_send_one_back(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    items = texts("the crew was lovely", "the seat was fine, I guess", "lost my bag again", "no label yet")
    ann, bob, lead = user("ann"), user("bob"), user("lead")
    project = create_project("airline", "text_classification", ["neg", "pos"], items, overlap=2, members=[ann, bob])
    set_role(project, lead, "manager")
    annotate_by_api(server, project.pk, {ann: ["pos", "pos", "neg"], bob: ["pos", "neg", "neg"]})
    ids = list(project.tasks.order_by("id").values_list("pk", flat=True))

    page = login(browser, server, "lead", f"/data/{project.pk}/")
    with screenshot_on_failure(page, request):
        expect(page.get_by_test_id("task-count")).to_contain_text("4 tasks")
        snapshot(page, "datamanager-all")
        page.locator("#f-disagreement").select_option("yes")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_test_id("task-row")).to_have_count(1)
        row = page.get_by_test_id("task-row")
        expect(row).to_have_attribute("data-task", str(ids[1]))
        expect(row).to_contain_text("ann: pos")
        expect(row).to_contain_text("bob: neg")

        # By keyboard: the row's checkbox, the action, the reason, Apply.
        checkbox = page.get_by_label(f"select task {ids[1]}")
        checkbox.focus()
        page.keyboard.press("Space")
        expect(checkbox).to_be_checked()
        expect(page.locator("#selected-count")).to_have_text("1 selected")
        page.locator("#bulk-action").select_option("send_back")
        page.locator("#bulk-reason").fill("the seat review is neutral, not negative")
        snapshot(page, "datamanager-disagreements")
        page.locator("#bulk-reason").press("Enter")

        expect(page.get_by_test_id("messages")).to_contain_text("1 of 1 task(s) sent back")
        expect(page.get_by_test_id("no-tasks")).to_be_visible()  # the disagreement left with its annotations
        request_row = RelabelRequest.objects.get(task_id=ids[1])
        assert request_row.reason == "the seat review is neutral, not negative"
        assert request_row.requested_by == lead
        assert Task.objects.get(pk=ids[1]).status == Task.Status.OPEN

        page.locator("#f-disagreement").select_option("")
        page.locator("#f-status").select_option("sent_back")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_test_id("task-row")).to_have_count(1)
        page.get_by_test_id("task-link").click()
        expect(page.get_by_test_id("task-status")).to_have_text("sent back")
        expect(page.get_by_test_id("relabel-request")).to_contain_text("the seat review is neutral")
        snapshot(page, "datamanager-task")
        page.locator("#back-to-list").click()
        expect(page.locator("#f-status")).to_have_value("sent_back")
