"""A manager previews and adds crawled items from the browser, and creates a project from a crawl (real Chromium,
gunicorn, MariaDB; the items are stored through the crawler's store step)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from annotation.services import start_project
from datastore.models import CrawlJob, Project, SourceFeed, Task
from tests.browser_support import login, screenshot_on_failure, snapshot, user
from tests.integration.test_intake import crawl, image, page

pytestmark = pytest.mark.browser


def test_a_manager_previews_then_adds_items_from_a_crawl(browser: Any, server: str, request: Any) -> None:
    boss = user("boss")
    get_user_model().objects.filter(pk=boss.pk).update(is_staff=True)
    boss.refresh_from_db()
    job = crawl("web-site", [page(1), page(2, lang="de"), page(3, path="blog"), page(4), image(1, 1)])
    crawl("web-site", [page(5)])
    project = start_project(boss, "browser-news", "text_classification", ["pos", "neg"])

    tab = login(browser, server, "boss", f"/manage/{project.pk}/")
    with screenshot_on_failure(tab, request):
        tab.get_by_test_id("add-items-link").click()
        tab.wait_for_url(f"{server}/manage/{project.pk}/items/")
        assert tab.get_by_label("Kind").input_value() == "text", "the project's item kind is chosen"
        tab.get_by_label("Source").select_option(label="web-site")
        tab.get_by_label("Crawl job").select_option(value=str(job.pk))
        tab.get_by_label("Languages").fill("en")
        tab.get_by_test_id("preview-button").click()
        assert tab.get_by_test_id("preview-matching").inner_text() == "3"
        assert tab.get_by_test_id("preview-new").inner_text() == "3"
        snapshot(tab, "intake-preview")
        assert Task.objects.filter(project=project).count() == 0, "a preview writes nothing"

        tab.get_by_test_id("add-button").click()
        assert "3 item(s) match: 3 added, 0 already in the project" in tab.get_by_test_id("messages").inner_text()
        assert Task.objects.filter(project=project).count() == 3

        # The wrong kind: refused with the counts, nothing written.
        tab.get_by_label("Kind").select_option(value="")
        tab.get_by_label("Source").select_option(label="web-site")
        tab.get_by_test_id("add-button").click()
        error = tab.get_by_test_id("intake-error").inner_text()
        assert "1 of the 6 matching items are not text items" in error
        # A filter that matches nothing: said so.
        tab.get_by_label("Kind").select_option(value="text")
        tab.get_by_label("URL pattern").fill("/nothing/")
        tab.get_by_test_id("add-button").click()
        assert "no item matches the filter" in tab.get_by_test_id("intake-error").inner_text()
        assert Task.objects.filter(project=project).count() == 3

        # Follow the source: a later crawl's blog posts arrive as tasks.
        tab.get_by_label("URL pattern").fill("/blog/")
        tab.get_by_test_id("follow-button").click()
        assert "now follows web-site" in tab.get_by_test_id("messages").inner_text()
        assert SourceFeed.objects.get(project=project).filters == {"url_pattern": "/blog/", "kind": "text"}
        snapshot(tab, "intake-follow")

        # A new project from a crawl, in one step.
        tab.goto(f"{server}/manage/new/")
        tab.get_by_label("Name").fill("from-the-crawl")
        tab.get_by_label("Task type").select_option("text_classification")
        tab.get_by_label("Labels").fill("pos\nneg")
        tab.locator("#id_items-source").select_option(label="web-site")
        tab.locator("#id_items-kind").select_option("text")
        tab.locator("#id_items-sample").fill("2")
        tab.locator("#id_items-seed").fill("5")
        tab.get_by_role("button", name="Create project").click()
        assert "2 item(s) match: 2 added" in tab.get_by_test_id("messages").inner_text()
        snapshot(tab, "intake-new-project-made")
    made = Project.objects.get(name="from-the-crawl")
    assert made.tasks.count() == 2 and made.memberships.get().user == boss
    assert CrawlJob.objects.filter(source__name="web-site").count() == 2
