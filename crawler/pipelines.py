"""Item pipelines: images into the file store, then batches of items into the models of record.

Database writes run in one background thread, so the crawl keeps fetching while a batch commits. The job's row
is opened and closed by ``crawler.extensions.JobRecorder``, also when this pipeline is off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, cast

import django
from django.apps import apps
from django.conf import settings
from django.db import connection
from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem
from scrapy.http import Request
from scrapy.pipelines.images import ImagesPipeline
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import reactor
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from crawler.middlewares import site_name
from crawler.spiders.common import ExtractingSpider
from modelpack.archive import sha256_file  # Django-free

log = logging.getLogger(__name__)


def django_ready() -> None:
    """Set up Django in the crawler process, where Scrapy (not Django) starts the program.

    Scrapy's logging stays as it is: the project's LOGGING would put its own root handler in place of Scrapy's,
    logging at its level whatever ``LOG_LEVEL`` the crawl was given, so its ``root`` part is left out here (the
    levels it sets for other loggers still apply).
    """
    if apps.ready:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    settings.LOGGING = {key: value for key, value in settings.LOGGING.items() if key != "root"}
    django.setup()


def job_for_spider(spider: Any) -> Any:
    """The CrawlJob a spider records into: the one it was given, or a new one for a plain ``scrapy crawl`` (its
    source named for the first start URL's site, port included: two sites on one host are two sources)."""
    # local: the models need Django, which django_ready sets up when the spider opens
    from datastore import services
    from datastore.models import CrawlJob

    if spider.job_id is not None:
        return CrawlJob.objects.select_related("source").get(pk=spider.job_id)
    start = (getattr(spider, "start_urls", None) or [""])[0]
    source = services.get_or_create_source(site_name(start) or spider.allowed_domains[0], start)
    job = services.start_crawl_job(source, spider.name, list(spider.start_urls))
    spider.job_id = job.pk
    return job


def _close_connection() -> None:
    connection.close()  # the calling thread's connection: ``connection`` is a per-thread proxy


class SizedImagesPipeline(ImagesPipeline):
    """Scrapy's images pipeline with a per-image size cap and a SHA-256 of the stored file."""

    def get_media_requests(self, item: Any, info: Any) -> list[Request]:
        cap = self.crawler.settings.getint("IMAGES_MAX_BYTES")
        return [Request(url, meta={"download_maxsize": cap}) for url in ItemAdapter(item).get("image_urls", [])]

    def item_completed(self, results: Any, item: Any, info: Any) -> Any:
        if not ItemAdapter(item).get("image_urls"):
            return item  # a text page: nothing to download
        item = super().item_completed(results, item, info)
        adapter = ItemAdapter(item)
        store = Path(self.crawler.settings.get("IMAGES_STORE"))
        stored = adapter.get("images") or []
        if not stored:
            cast(ExtractingSpider, self.crawler.spider).skip("image_failed", adapter.get("url", ""))
            raise DropItem("image could not be downloaded or decoded")
        path = store / stored[0]["path"]
        adapter["image"] = str(path)
        adapter["content_hash"] = sha256_file(path)
        return item


class DatabasePipeline:
    """Buffer items and store them ``STORE_BATCH_SIZE`` at a time, one transaction per batch."""

    def __init__(self, crawler: Any, batch_size: int) -> None:
        self.crawler, self.batch_size = crawler, batch_size
        self.buffer: list[dict[str, Any]] = []
        self.job: Any = None
        self.pool = ThreadPool(minthreads=1, maxthreads=1, name="fsml-store")

    @classmethod
    def from_crawler(cls, crawler: Any) -> DatabasePipeline:
        return cls(crawler, crawler.settings.getint("STORE_BATCH_SIZE", 200))

    def open_spider(self) -> None:
        django_ready()
        self.job = job_for_spider(self.crawler.spider)
        self.pool.start()

    async def process_item(self, item: Any) -> Any:
        self.buffer.append(ItemAdapter(item).asdict())
        if len(self.buffer) >= self.batch_size:
            await self.flush()
        return item

    async def flush(self) -> None:
        """Store the buffered items in the background thread; a failed batch is counted, not raised."""
        batch, self.buffer = self.buffer, []
        if not batch:
            return
        d = deferToThreadPool(reactor, self.pool, self._store, batch)
        d.addErrback(self._store_failed, batch)
        await maybe_deferred_to_future(d)

    def _store(self, batch: list[dict[str, Any]]) -> None:
        # local: datastore.services needs Django, which django_ready sets up when the spider opens
        from datastore import services

        result = services.store_items(self.job, batch)
        for error in result.failed:
            self.crawler.spider.skip(f"invalid_{error.field}", error.url)

    def _store_failed(self, failure: Any, batch: list[dict[str, Any]]) -> None:
        # The batch's transaction rolled back: nothing of it is in the database. JobRecorder fails the job.
        self.crawler.stats.inc_value("fsml/store_failed", len(batch))
        log.error("storing %d items failed: %s", len(batch), failure.getErrorMessage())

    async def close_spider(self) -> None:
        try:
            await self.flush()
            await maybe_deferred_to_future(deferToThreadPool(reactor, self.pool, _close_connection))
        finally:
            self.pool.stop()
