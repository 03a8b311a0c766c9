"""A batch of crawled items adds up: each one counted once as new, updated, unchanged, duplicate or failed."""

from __future__ import annotations

from typing import Any

from datastore import services
from datastore.models import CrawlJob, Item


def page(path: str, text: str) -> dict[str, Any]:
    url = f"http://site.test/{path}"
    return {"url": url, "canonical_url": url, "text": text}


def counts(job: CrawlJob) -> tuple[int, int, int, int, int]:
    job.refresh_from_db()
    return job.items_stored, job.items_updated, job.items_unchanged, job.items_duplicate, job.items_failed


def test_a_url_twice_in_one_batch_is_counted_twice_and_stored_once(db) -> None:
    source = services.get_or_create_source("site.test", "http://site.test/")
    job = services.start_crawl_job(source, "site", ["http://site.test/"])
    batch = [
        page("", "the start page"),
        page("a", "page a"),
        page("", "the start page"),  # the start page fetched a second time
        page("b", "page b, first version"),
        page("b", "page b, second version"),
        {"url": "", "canonical_url": "", "text": "no URL"},
    ]
    result = services.store_items(job, batch)
    assert sum(counts(job)) == len(batch)
    assert counts(job) == (3, 0, 1, 1, 1)
    assert (result.stored, result.unchanged, result.duplicates, len(result.failed)) == (3, 1, 1, 1)
    assert Item.objects.filter(source=source).count() == 3
    assert Item.objects.get(source=source, url="http://site.test/b").text == "page b, second version"
