"""Crawl jobs from the crawler's side: which job a spider records into, live stats, resume filtering."""

from __future__ import annotations

import logging
import os
from typing import Any, cast

from scrapy import signals
from scrapy.dupefilters import RFPDupeFilter
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from scrapy.http import Request
from twisted.internet import task

log = logging.getLogger(__name__)


def job_for_spider(spider: Any) -> Any:
    """The CrawlJob a spider records into: the one it was given, or a new one for a plain ``scrapy crawl``."""
    from datastore import services
    from datastore.models import CrawlJob

    if spider.job_id is not None:
        return CrawlJob.objects.select_related("source").get(pk=spider.job_id)
    start = (getattr(spider, "start_urls", None) or [""])[0]
    source = services.get_or_create_source(spider.allowed_domains[0], start)
    return services.start_crawl_job(source, spider.name, list(spider.start_urls))


class LiveStats:
    """Extension: write pages crawled and errors to the CrawlJob row every few seconds."""

    def __init__(self, crawler: Any, interval: float) -> None:
        self.crawler, self.interval = crawler, interval
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> LiveStats:
        interval = crawler.settings.getfloat("FSML_STATS_INTERVAL", 5.0)
        if interval <= 0:
            raise NotConfigured
        ext = cls(crawler, interval)
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider: Any) -> None:
        self.spider = spider
        self.loop = task.LoopingCall(self.write)
        self.loop.start(self.interval, now=False)

    def write(self) -> None:
        from datastore import services

        if getattr(self.spider, "job_id", None) is None:
            return
        stats = self.crawler.stats
        try:
            services.write_live_counts(
                self.spider.job_id, stats.get_value("response_received_count", 0), stats.get_value("log_count/ERROR", 0)
            )
        except Exception as exc:  # live stats are best effort; the final write happens at close
            log.warning("could not write live crawl stats: %s", exc)

    def closed(self, spider: Any) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class SkipStoredPages:
    """Downloader middleware for resumed jobs: item pages this job already stored are not fetched again.

    Listing pages are fetched again to find the links that a killed run had not followed yet. Without an
    ``extract`` pattern a site crawl cannot tell the two apart, so it fetches every page again (see
    ``ExtractingSpider.skip_if_stored``).
    """

    def __init__(self) -> None:
        self.stored: set[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> SkipStoredPages:
        mw = cls()
        crawler.signals.connect(mw.opened, signal=signals.spider_opened)
        return mw

    def opened(self, spider: Any) -> None:
        from datastore.models import Item

        resumed = spider.crawler.settings.getbool("FSML_RESUME")
        if resumed and getattr(spider, "job_id", None) is not None:
            self.stored = set(Item.objects.filter(crawl_job_id=spider.job_id).values_list("url_hash", flat=True))
            log.info("resuming job %s: %d pages already stored", spider.job_id, len(self.stored))

    def process_request(self, request: Request, spider: Any) -> None:
        if not self.stored or not spider.skip_if_stored(request.url):
            return None
        from crawler.extract import canonical_url
        from datastore.services import sha256_text

        if sha256_text(canonical_url(request.url)) in self.stored:
            spider.crawler.stats.inc_value("fsml/resume/already_stored")
            raise IgnoreRequest("already stored by this job before it was interrupted")
        return None


class MemoryDupeFilter(RFPDupeFilter):
    """Request de-duplication kept in memory even with a JOBDIR.

    Scrapy persists seen fingerprints when a request is scheduled, so after a SIGKILL the requests that
    were in flight would never be fetched again. Resumed jobs re-discover links instead, and
    ``SkipStoredPages`` keeps them from fetching what was already stored.
    """

    def log(self, request: Request, spider: Any) -> None:
        # A redirect back to a page already requested is a redirect loop: record it with its reason.
        if request.url in request.meta.get("redirect_urls", ()) and hasattr(spider, "skip"):
            spider.skip("redirect_loop", request.meta["redirect_urls"][0])
        super().log(request, spider)

    @classmethod
    def from_crawler(cls, crawler: Any) -> MemoryDupeFilter:
        return cls(None, crawler.settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter)


class SharedFrontierIdle:
    """Extension for distributed crawls: a process closes only when the shared frontier is empty and every
    other process of the job is idle too (otherwise the first process to run dry would quit early).

    Each process keeps a short-lived "alive" key and joins the job's idle set while it has nothing to do.
    """

    ALIVE_TTL = 60

    def __init__(self, crawler: Any, url: str, prefix: str) -> None:
        import redis

        self.crawler, self.redis, self.prefix = crawler, redis.Redis.from_url(url), prefix
        self.me = f"{os.uname().nodename}-{os.getpid()}"
        self.idle = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> SharedFrontierIdle:
        if not crawler.settings.getbool("FSML_SHARED_JOB"):
            raise NotConfigured
        prefix = crawler.settings.get("SCHEDULER_QUEUE_KEY").rsplit(":", 1)[0]
        ext = cls(crawler, crawler.settings.get("REDIS_URL"), prefix)
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.busy, signal=signals.request_reached_downloader)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider: Any) -> None:
        self.redis.set(f"{self.prefix}:alive:{self.me}", 1, ex=self.ALIVE_TTL)

    def busy(self, request: Request, spider: Any) -> None:
        if self.idle:
            self.redis.srem(f"{self.prefix}:idle", self.me)
            self.idle = False

    def spider_idle(self, spider: Any) -> None:
        self.redis.set(f"{self.prefix}:alive:{self.me}", 1, ex=self.ALIVE_TTL)
        scheduler = self.crawler.engine.scheduler
        if scheduler is not None and scheduler.has_pending_requests():
            self.busy(None, spider)  # type: ignore[arg-type]
            raise DontCloseSpider
        self.redis.sadd(f"{self.prefix}:idle", self.me)
        self.idle = True
        alive = {k.decode().rsplit(":", 1)[1] for k in self.redis.scan_iter(f"{self.prefix}:alive:*")}
        idle = {m.decode() for m in cast(set[bytes], self.redis.smembers(f"{self.prefix}:idle"))}
        if not alive <= idle:
            raise DontCloseSpider  # another process may still add to the frontier

    def closed(self, spider: Any) -> None:
        self.redis.delete(f"{self.prefix}:alive:{self.me}")
