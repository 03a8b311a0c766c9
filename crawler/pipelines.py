"""Item pipelines: images into the file store, then batches of items into the models of record.

Database writes run in one background thread, so the crawl keeps fetching while a batch commits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from itemadapter import ItemAdapter
from scrapy.http import Request
from scrapy.pipelines.images import ImagesPipeline
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from modelpack.archive import sha256_file  # Django-free

log = logging.getLogger(__name__)


def django_ready() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    import django

    django.setup()


class SizedImagesPipeline(ImagesPipeline):
    """Scrapy's images pipeline with a per-image size cap and a SHA-256 of the stored file."""

    def get_media_requests(self, item: Any, info: Any) -> list[Request]:
        cap = info.spider.crawler.settings.getint("IMAGES_MAX_BYTES")
        return [Request(url, meta={"download_maxsize": cap}) for url in ItemAdapter(item).get("image_urls", [])]

    def item_completed(self, results: Any, item: Any, info: Any) -> Any:
        if not ItemAdapter(item).get("image_urls"):
            return item  # a text page: nothing to download
        item = super().item_completed(results, item, info)
        adapter = ItemAdapter(item)
        store = Path(info.spider.crawler.settings.get("IMAGES_STORE"))
        stored = adapter.get("images") or []
        if not stored:
            info.spider.skip("image_failed", adapter.get("url", ""))
            from scrapy.exceptions import DropItem

            raise DropItem("image could not be downloaded or decoded")
        path = store / stored[0]["path"]
        adapter["image"] = str(path)
        adapter["content_hash"] = sha256_file(path)
        return item


class DatabasePipeline:
    """Buffer items and store them ``STORE_BATCH_SIZE`` at a time, one transaction per batch."""

    crawler: Any  # set by from_crawler

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.buffer: list[dict[str, Any]] = []
        self.job: Any = None
        self.pool = ThreadPool(minthreads=1, maxthreads=1, name="fsml-store")
        self.store_failures = 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> DatabasePipeline:
        pipeline = cls(crawler.settings.getint("STORE_BATCH_SIZE", 200))
        pipeline.crawler = crawler
        return pipeline

    def open_spider(self, spider: Any) -> None:
        django_ready()
        from crawler.jobs import job_for_spider

        self.job = job_for_spider(spider)
        spider.job_id = self.job.pk
        self.pool.start()

    def process_item(self, item: Any, spider: Any) -> Any:
        self.buffer.append(ItemAdapter(item).asdict())
        if len(self.buffer) >= self.batch_size:
            return self.flush(spider).addCallback(lambda _: item)
        return item

    def flush(self, spider: Any) -> defer.Deferred:
        batch, self.buffer = self.buffer, []
        if not batch:
            return defer.succeed(None)
        d = deferToThreadPool(reactor, self.pool, self._store, batch, spider)
        d.addErrback(self._store_failed, batch)
        return d

    def _store(self, batch: list[dict[str, Any]], spider: Any) -> None:
        from datastore import services

        result = services.store_items(self.job, batch)
        for error in result.failed:
            spider.skip(f"invalid_{error.field}", error.url)

    def _store_failed(self, failure: Any, batch: list[dict[str, Any]]) -> None:
        # The batch's transaction rolled back: nothing of it is in the database.
        self.store_failures += len(batch)
        self.crawler.stats.inc_value("fsml/store_failed", len(batch))
        log.error("storing %d items failed: %s", len(batch), failure.getErrorMessage())

    def close_spider(self, spider: Any) -> defer.Deferred:
        d = self.flush(spider)
        d.addBoth(lambda _: deferToThreadPool(reactor, self.pool, self._finish, spider))
        d.addErrback(lambda f: log.error("could not record the end of the crawl job: %s", f.getErrorMessage()))
        d.addBoth(lambda _: self.pool.stop())
        return d

    def _finish(self, spider: Any) -> None:
        from django.db import connection

        from datastore import services

        stats = dict(self.crawler.stats.get_stats())
        reason = stats.get("finish_reason", "finished")
        stats["failures"] = getattr(spider, "failures", {})
        failed = self.store_failures > 0 or reason not in ("finished", "closespider_pagecount")
        if self.crawler.settings.getbool("FSML_SHARED_JOB"):  # the parent closes a distributed job
            services.add_process_stats(self.job.pk, failed=failed, stats=stats)
        else:
            services.finish_crawl_job(self.job.pk, failed=failed, stats=stats)
        connection.close()
