"""Item pipeline: batch crawled pages into the models of record through datastore.services."""

from __future__ import annotations

import os
from typing import Any

import django


class DatabasePipeline:
    """Buffer items and store them ``STORE_BATCH_SIZE`` at a time, one transaction per batch."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.buffer: list[dict[str, Any]] = []
        self.job: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> DatabasePipeline:
        return cls(crawler.settings.getint("STORE_BATCH_SIZE", 200))

    def open_spider(self, spider: Any) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        django.setup()
        from datastore import services
        from datastore.models import CrawlJob

        if spider.job_id is not None:
            self.job = CrawlJob.objects.select_related("source").get(pk=spider.job_id)
        else:  # plain `scrapy crawl site -a start_url=...`: record a job for the site's host
            start = spider.start_urls[0]
            source = services.get_or_create_source(spider.allowed_domains[0], start)
            self.job = services.start_crawl_job(source, spider.name, [start])

    def process_item(self, item: Any, spider: Any) -> Any:
        self.buffer.append(dict(item))
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def flush(self) -> None:
        from datastore import services

        if self.buffer:
            batch, self.buffer = self.buffer, []
            services.store_items(self.job, batch)

    def close_spider(self, spider: Any) -> None:
        from datastore import services

        self.flush()
        stats = spider.crawler.stats.get_stats()
        reason = stats.get("finish_reason", "finished")
        services.finish_crawl_job(
            self.job.pk, failed=reason not in ("finished", "closespider_pagecount"), stats=stats
        )
