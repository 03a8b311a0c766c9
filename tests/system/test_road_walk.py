"""The road as its users walk it, every stage real: a Scrapy crawl of a local site, gunicorn, MariaDB, Redis, a
Celery worker, headless Chromium, DVC and the ``fsml`` command.

A manager creates a project from the crawl with filters and invites an annotator, who sets a password through the
link, labels and asks a question. The manager answers it from the question page and adds it to the guidelines,
runs pre-annotation from the browser, filters the data manager for disagreements and sends one back. Then the CLI
snapshots, trains, packages and promotes a model of that project, a job is served, and the job's lineage page
names the crawled URL and its fetch time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from datastore import services
from datastore.models import CrawlJob, DatasetVersion, GuidelineVersion, Item, Project, Question, RelabelRequest
from deploy.demo.samplesite import SampleSiteServer
from tests.browser_support import (
    api_session,
    invite,
    login,
    screenshot_on_failure,
    set_password,
    sign_in_from_password_set,
    snapshot,
    user,
)
from tests.helpers import fsml
from tests.processes import wait_done

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABELS = ["negative", "neutral", "positive"]
LICENCE = "CC BY 4.0 (sample)"
PASSWORD = "a long fresh password 2026"


def ok(*args: str) -> str:
    """Run ``fsml ARGS`` and return its output; fail the test with it when the command fails."""
    done = fsml(*args, timeout=600)
    assert done.returncode == 0, f"fsml {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def label_by_api(server: str, project: Project, account: Any, category: dict[int, str], flip: int = -1) -> int:
    """``account`` takes tasks through the REST API until none is left and labels each by the site's own
    category; the ``flip``-th answer is wrong on purpose. Returns the number labelled."""
    done = 0
    with api_session(account) as http:
        while True:
            res = http.post(f"{server}/api/projects/{project.pk}/next/", timeout=30)
            if res.status_code == 204:
                return done
            task = res.json()
            value = category[task["item"]["id"]]
            if done == flip:
                value = next(label for label in LABELS if label != value)
            answer = http.post(f"{server}/api/tasks/{task['id']}/annotations/", json={"value": value}, timeout=30)
            assert answer.status_code == 201, answer.text
            done += 1


def test_a_crawl_becomes_tasks_labels_a_model_and_a_served_job_traces_back_to_the_page(
    browser: Any, server: str, celery_worker: Any, model_archive: Any, request: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    # A real crawl of a local site, from the command line; its posts carry the site's own category.
    with SampleSiteServer(limit=90, seed=11) as site:
        ok(
            "crawl",
            "site",
            site.url,
            "--source",
            "reviews-site",
            "--licence",
            "CC BY 4.0 (sample)",
            "--extract",
            "/post/",
        )
    crawl_job = CrawlJob.objects.get(source__name="reviews-site")
    assert crawl_job.status == CrawlJob.Status.FINISHED and crawl_job.items_stored > 60
    # A model to pre-annotate with, registered and promoted as researchers do.
    archive, sha, manifest = model_archive
    services.register_model_version("suggester", "text_classification", str(archive), sha, manifest, None)
    services.registry.promote("suggester", 1, "production")

    lead = user("lead")
    get_user_model().objects.filter(pk=lead.pk).update(is_staff=True)
    manager = login(browser, server, "lead", "/manage/new/")
    with screenshot_on_failure(manager, request):
        # 1. A project from the crawl, with filters: this crawl job's post pages, at least 20 characters long.
        manager.get_by_label("Name").fill("walk")
        manager.get_by_label("Task type").select_option("text_classification")
        manager.get_by_label("Labels").fill("\n".join(LABELS))
        manager.locator("#id_overlap").fill("2")
        manager.locator("#id_items-source").select_option(label="reviews-site")
        manager.locator("#id_items-crawl_job").select_option(value=str(crawl_job.pk))
        manager.locator("#id_items-url_pattern").fill("/post/")
        manager.locator("#id_items-min_chars").fill("20")
        manager.locator("#id_items-kind").select_option("text")
        manager.get_by_role("button", name="Create project").click()
        expect(manager.get_by_test_id("messages")).to_contain_text("added")
        project = Project.objects.get(name="walk")
        posts = Item.objects.filter(crawl_job=crawl_job, canonical_url__contains="/post/")
        expected = [i for i in posts if len(i.text) >= 20]
        assert project.tasks.count() == len(expected) > 60
        category = {i.pk: i.metadata["meta"]["category"] for i in expected}

        # 2. An annotator's account and invitation link, from the team page.
        manager.get_by_test_id("team-link").click()
        link = invite(manager, server, "ann")

    # 3. The annotator sets a password through the link, labels three tasks by keyboard and asks a question.
    ann = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    with screenshot_on_failure(ann, request):
        ann.goto(link)
        set_password(ann, PASSWORD)
        sign_in_from_password_set(ann, server, "ann", PASSWORD)
        ann.get_by_role("link", name="Label").click()
        for n in range(3):
            expect(ann.get_by_test_id("progress-mine")).to_contain_text(f"{n} of ")
            ann.keyboard.press("1")  # always "negative": some of these disagree with the site's category
            ann.keyboard.press("Enter")
        expect(ann.get_by_test_id("progress-mine")).to_contain_text("3 of ")
        ann.keyboard.press("?")
        ann.get_by_test_id("question-input").fill("Is a late flight with a kind crew negative or neutral?")
        ann.keyboard.press("Enter")
        expect(ann.get_by_test_id("status")).to_have_text("Question sent to the project managers.")
        snapshot(ann, "walk-annotator")

    question = Question.objects.get(project=project)
    with screenshot_on_failure(manager, request):
        # 4. The manager answers it on the question page and adds the answer to the guidelines.
        manager.goto(f"{server}/manage/{project.pk}/")
        manager.get_by_test_id("questions-link").click()
        card = manager.get_by_test_id(f"question-{question.pk}")
        expect(card).to_contain_text("late flight with a kind crew")
        card.get_by_label("Answer").fill("Neutral, unless the review says the delay ruined the trip.")
        manager.get_by_test_id(f"add-to-guidelines-{question.pk}").check()
        card.get_by_role("button", name="Answer").click()
        expect(manager.get_by_test_id("messages")).to_contain_text("added to the guidelines (version 2)")

        # 5. Pre-annotation from the browser, run by the Celery worker; it finishes on the page.
        manager.goto(f"{server}/manage/{project.pk}/")
        manager.get_by_label("Model").select_option("suggester@production")
        manager.get_by_role("button", name="Start pre-annotation").click()
        expect(manager.get_by_test_id("messages")).to_contain_text("with suggester:1 is queued")
        expect(manager.locator("tr[data-job-id]").first).to_have_attribute("data-status", "succeeded", timeout=90_000)
        snapshot(manager, "walk-preannotation")
    assert project.tasks.filter(prediction__isnull=False).count() == project.tasks.count()
    question.refresh_from_db()
    assert question.added_to_guidelines == GuidelineVersion.objects.get(project=project, number=2)

    # Two more annotators label through the REST API, by the site's category; one answer is wrong on purpose.
    first, second = user("bot1"), user("bot2")
    project.memberships.create(user=first, role="annotator")
    project.memberships.create(user=second, role="annotator")
    assert label_by_api(server, project, first, category, flip=5) == project.tasks.count()
    # Not the three tasks ann labelled, nor the one she holds now.
    assert label_by_api(server, project, second, category) == project.tasks.count() - 4

    with screenshot_on_failure(manager, request):
        # 6. The data manager filtered for disagreements; the first one goes back with a reason.
        manager.goto(f"{server}/data/{project.pk}/")
        manager.locator("#f-disagreement").select_option("yes")
        manager.get_by_role("button", name="Filter").click()
        rows = manager.get_by_test_id("task-row")
        expect(rows.first).to_be_visible()
        sent_back = int(rows.first.get_attribute("data-task") or 0)
        manager.get_by_label(f"select task {sent_back}").check()
        manager.locator("#bulk-action").select_option("send_back")
        manager.locator("#bulk-reason").fill("two annotators disagree: label it again under guidelines v2")
        manager.locator("#bulk-reason").press("Enter")
        expect(manager.get_by_test_id("messages")).to_contain_text("1 of 1 task(s) sent back")
        snapshot(manager, "walk-datamanager")
    assert RelabelRequest.objects.get(task_id=sent_back).requested_by == lead

    # 7. The command line: snapshot, train, package, promote.
    ok("dataset", "snapshot", "walk", "--name", "walk-v1")
    version = DatasetVersion.objects.get(name="walk-v1")
    done = project.tasks.filter(status="done")
    assert sum(version.counts.values()) == done.count() == project.tasks.count() - 2  # sent back, and ann's held one
    run = tmp_path / "run"
    ok("train", "walk-v1", "--out", str(run), "--epochs", "3")
    ok("package", str(run), "--name", "walk-model")
    ok("model", "promote", "walk-model", "1", "production", "--reason", "the road walk")

    # 8. A backend service submits a crawled post's text; the worker serves it with the promoted model.
    post = Item.objects.filter(tasks__in=done).order_by("id").first()
    assert post is not None
    service = user("billing")
    with api_session(service) as http:
        res = http.post(
            f"{server}/api/jobs/", json={"model": "walk-model@production", "inputs": {"text": post.text}}, timeout=30
        )
    assert res.status_code == 202, res.text
    [job] = wait_done([res.json()["id"]], timeout=120)
    assert job.status == "succeeded", job.error
    assert job.model_version.dataset_version == version

    # 9. The job's lineage page names the crawled page and when it was fetched.
    with screenshot_on_failure(manager, request):
        manager.goto(f"{server}/jobs/{job.pk}/lineage/")
        expect(manager.get_by_test_id("lineage-url")).to_have_attribute("href", post.url)
        fetched = manager.get_by_test_id("lineage-fetched").locator("time")  # shown in the reader's locale
        expect(fetched).to_have_attribute("datetime", post.fetched_at.replace(microsecond=0).isoformat())
        expect(manager.get_by_test_id("lineage-licence")).to_have_text(LICENCE)
        snapshot(manager, "walk-lineage")
