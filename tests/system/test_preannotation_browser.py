"""A manager in real headless Chromium (gunicorn, MariaDB, a real Celery worker) picks a registered model for
pre-annotation, sees why another one does not fit, starts the job, sees it finish on the page, and sets the queue
order to most uncertain first, which an annotator's next task then follows."""

from __future__ import annotations

from typing import Any

import pytest

from annotation.services import create_project, set_role
from datastore import services
from datastore.models import Project, ProjectJob, Task
from tests.browser_support import api_session, login, screenshot_on_failure, snapshot, texts, user

pytestmark = pytest.mark.browser

LABELS = ["negative", "neutral", "positive"]


def test_a_manager_runs_pre_annotation_and_orders_the_queue_by_uncertainty(
    browser: Any, server: str, celery_worker: Any, model_archive: Any, request: Any
) -> None:
    from playwright.sync_api import expect

    archive, sha, manifest = model_archive
    services.register_model_version("sentiment", "text_classification", str(archive), sha, manifest, None)
    services.registry.promote("sentiment", 1, "production")
    services.register_model_version("digits", "image_classification", str(archive), sha, {"labels": ["0", "1"]}, None)
    items = texts(*(f"review {i}: the flight was {'late' if i % 2 else 'fine'} and the crew kind" for i in range(12)))
    annotator = user("ann")
    project = create_project("reviews", "text_classification", LABELS, items, overlap=1, members=[annotator])
    set_role(project, user("mona"), "manager")

    page = login(browser, server, "mona", f"/manage/{project.pk}/")
    with screenshot_on_failure(page, request):
        section = page.locator("#preannotation")
        expect(section.get_by_test_id("suggested-count")).to_contain_text("needs suggestions")
        section.get_by_test_id("misfits").locator("summary").click()
        expect(section.get_by_test_id("misfits")).to_contain_text(
            "model digits:1 is for image_classification, the project is text_classification"
        )
        expect(page.locator('#id_pre-model option[value="digits:1"]')).to_be_disabled()
        page.get_by_label("Model").select_option("sentiment@production")
        page.get_by_role("button", name="Start pre-annotation").click()
        expect(page.get_by_test_id("messages")).to_contain_text("with sentiment:1 is queued")
        job = ProjectJob.objects.get(project=project)
        row = page.locator(f'tr[data-job-id="{job.pk}"]')
        # The page follows the job and reloads once it is over.
        expect(row).to_have_attribute("data-status", "succeeded", timeout=60_000)
        expect(row).to_contain_text("12/12")
        expect(row).to_contain_text("12 task(s) suggested")
        expect(page.locator("#preannotation").get_by_test_id("suggested-count")).to_have_text(
            "12 open task(s) have a suggestion."
        )
        snapshot(page, "preannotation-done")

        page.get_by_label("Queue order").last.select_option("uncertainty")
        page.get_by_role("button", name="Set queue order").click()
        expect(page.get_by_test_id("messages")).to_have_text("Queue order: most uncertain model prediction first.")
        snapshot(page, "preannotation-queue-order")

    project.refresh_from_db()
    assert project.queue_order == Project.QueueOrder.UNCERTAINTY
    tasks = list(Task.objects.filter(project=project))
    assert all(t.prediction is not None and t.prediction["model"] == "sentiment:1" for t in tasks)
    most_uncertain = max(tasks, key=lambda t: (t.uncertainty, t.pk))
    with api_session(annotator) as http:
        handed = http.post(f"{server}/api/projects/{project.pk}/next/", timeout=30).json()
    assert handed["id"] == most_uncertain.pk and handed["prediction"]["model"] == "sentiment:1"
