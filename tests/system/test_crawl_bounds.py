"""Real Scrapy crawls of the fixture site: a crawl keeps to its origin, its counters add up, its job ends, and
its log honours LOG_LEVEL without page text."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from crawler.run import crawl, log_file
from datastore.models import CrawlJob, Item, Source
from tests.fixture_site import GOOD_TEXT, LATIN1_TEXT, FixtureSite

QUICK = {"DOWNLOAD_TIMEOUT": "2", "RETRY_TIMES": "0", "DOWNLOAD_MAXSIZE": str(1024 * 1024)}
COUNTERS = ("items_stored", "items_updated", "items_unchanged", "items_duplicate", "items_failed")


def counted(job: CrawlJob) -> int:
    return sum(getattr(job, name) for name in COUNTERS)


def test_a_crawl_keeps_to_its_port_unless_domains_widen_it(live_env: dict[str, str]) -> None:
    with FixtureSite() as other, FixtureSite(neighbour=other.url) as site:
        job = crawl("site", site.url, "fixtures", options={"depth": "1"}, scrapy_settings=QUICK)
        assert job.status == CrawlJob.Status.FINISHED
        assert other.requested == []  # not its robots.txt, "/", "/admin/" nor "/good"
        assert job.stats["fsml/offsite_filtered"] == 3
        assert not any(other.url in url for urls in job.stats["failures"].values() for url in urls)
        assert not Item.objects.filter(canonical_url__startswith=other.url).exists()

        wide = crawl(
            "site", site.url, "fixtures", options={"depth": "1", "domains": "127.0.0.1"}, scrapy_settings=QUICK
        )
        assert wide.status == CrawlJob.Status.FINISHED
        assert {"/robots.txt", "/", "/admin/", "/good"} <= set(other.requested)


def test_two_sites_on_one_host_are_two_sources(live_env: dict[str, str]) -> None:
    # A plain ``scrapy crawl`` names its source for the start URL's site, port included.
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    with FixtureSite() as first, FixtureSite() as second:
        for site in (first, second):
            subprocess.run(
                [sys.executable, "-m", "scrapy", "crawl", "site", "-a", f"start_url={site.url}good", "-a", "depth=1"],
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
    names = {site.url.removeprefix("http://").rstrip("/") for site in (first, second)}
    assert set(Source.objects.filter(name__in=names).values_list("name", flat=True)) == names
    for source in Source.objects.filter(name__in=names):
        assert list(source.items.values_list("text", flat=True)) == [GOOD_TEXT]


def test_counters_add_up_exactly_and_the_start_page_is_fetched_once(live_env: dict[str, str]) -> None:
    # No ``extract``: every page is an item, the start page too (and it links to itself).
    settings = {**QUICK, "LOG_LEVEL": "DEBUG"}
    with FixtureSite() as site:
        job = crawl("site", site.url, "fixtures", scrapy_settings=settings)
        assert site.requested.count("/") == 1
        again = crawl("site", site.url, "fixtures", scrapy_settings=settings)
        assert site.requested.count("/") == 2
    rows = Item.objects.filter(source=job.source).count()
    assert job.status == again.status == CrawlJob.Status.FINISHED
    assert counted(job) == job.stats["item_scraped_count"] == job.items_stored == rows
    assert counted(again) == again.stats["item_scraped_count"] == again.items_unchanged == rows
    assert again.items_stored == 0
    # "/redirected" lands on "/good?utm_campaign=x", the page "/good" already is: one item, the other skipped.
    assert any(u.endswith("/good?utm_campaign=x") or u.endswith("/good") for u in job.stats["failures"]["seen_url"])

    log = log_file(job.pk).read_text()
    assert "Scraped from <200" in log  # DEBUG asked for: the scraped lines are there, by URL
    assert GOOD_TEXT not in log and LATIN1_TEXT not in log  # never the item's text
    assert "DeprecationWarning" not in log


def test_a_crawl_with_storage_off_ends_and_logs_at_its_level(live_env: dict[str, str]) -> None:
    with FixtureSite() as site:
        job = crawl(
            "site",
            site.url + "good",
            "fixtures",
            options={"depth": "1"},
            scrapy_settings={**QUICK, "ITEM_PIPELINES": "{}", "LOG_LEVEL": "WARNING"},
        )
    assert job.status == CrawlJob.Status.FINISHED and job.finished_at is not None
    assert job.pages_crawled >= 1 and job.stats["item_scraped_count"] == 1
    assert job.items_stored == 0 and not Item.objects.filter(source=job.source).exists()
    log = log_file(job.pk).read_text()
    assert not re.search(r"\b(INFO|DEBUG)\b", log), log[:2000]
