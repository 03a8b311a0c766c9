"""The evaluation, crawl and model-registry pages in real headless Chromium at 1280 px: tables fit the window,
times are shown in the browser's locale, a case walks to the next one in its list, compare shows one page of
records per outcome, and axe-core finds no serious or critical violation. Screenshots with FSML_BROWSER_SCREENSHOTS."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from datastore import services
from datastore.models import CrawlJob
from tests.axe_support import assert_accessible
from tests.browser_support import login, screenshot_on_failure, snapshot, user
from tests.integration.test_pages_eval import seed_two

pytestmark = pytest.mark.browser
FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"
TABLE_FITS = "(el) => el.scrollWidth <= el.clientWidth + 1"


def test_pages_fit_walk_and_pass_axe(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    seeded = seed_two()
    a, b = seeded["a"], seeded["b"]
    source = services.get_or_create_source("a-source-with-a-long-name-for-the-crawls-table", "http://example.test/")
    job = services.start_crawl_job(source, "sitemap", ["http://example.test/sitemap.xml"] * 3)
    services.finish_crawl_job(
        job.pk, failed=True,
        stats={"response_received_count": 123456, "failures": {"DownloadConnectionRefusedError": ["u"], "http_404": []},
               "fsml/skipped/http_404": 4321},
    )  # fmt: skip
    CrawlJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(minutes=42))
    staff = user("staff")
    staff.is_staff = True
    staff.save()

    page = login(browser, server, "staff", "/crawls/")
    with screenshot_on_failure(page, request):
        table = page.locator("#crawl-jobs")
        expect(table).to_be_visible()
        assert page.evaluate(FITS), "the crawls page fits 1280 px"
        assert page.locator(".table-wrap").first.evaluate(TABLE_FITS), "the crawls table needs no scrolling"
        started = page.locator("#crawl-jobs time").first
        expect(started).not_to_contain_text("UTC")  # rewritten into the browser's locale by fsml.js
        assert "dict_keys" not in page.content()
        assert_accessible(page, "crawls")
        snapshot(page, "evalpages-crawls")

        page.goto(f"{server}/evaluations/{a.pk}/")
        expect(page.get_by_test_id("cm-share").first).to_be_visible()
        assert page.evaluate(FITS), "the evaluation page fits 1280 px"
        assert_accessible(page, "evaluation")
        snapshot(page, "evalpages-evaluation")

        page.select_option("#filter-outcome", "wrong")
        page.click("#filter-submit")
        page.get_by_test_id("case-link").first.click()
        expect(page.get_by_test_id("case-position")).to_contain_text("case 1 of 70")
        page.click("#case-next")
        expect(page.get_by_test_id("case-position")).to_contain_text("case 2 of 70")
        expect(page.locator("#case-previous")).to_be_visible()
        assert page.evaluate(FITS), "the case page fits 1280 px"
        assert_accessible(page, "case")
        snapshot(page, "evalpages-case")

        page.goto(f"{server}/evaluations/compare/?a={a.pk}&b={b.pk}")
        expect(page.get_by_test_id("compare-row")).to_have_count(50)
        assert page.evaluate("() => document.documentElement.scrollHeight") < 4000, "one page of records, not all"
        assert page.evaluate(FITS), "the compare page fits 1280 px"
        assert_accessible(page, "compare")
        snapshot(page, "evalpages-compare")
        page.click("#tab-broken")
        expect(page.get_by_test_id("compare-row")).to_have_count(5)

        for path, name in (("/models/", "models"), ("/models/sentiment/", "model")):
            page.goto(f"{server}{path}")
            expect(page.locator("main h1")).to_be_visible()
            assert page.evaluate(FITS), f"{path} fits 1280 px"
            assert_accessible(page, name)
            snapshot(page, f"evalpages-{name}")
