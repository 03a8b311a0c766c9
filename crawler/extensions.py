"""Crawl extensions: the CrawlJob row opened and closed, live stats on it, and the shared idle check of a
distributed crawl."""

from __future__ import annotations

import logging
import os
from typing import Any, cast

import redis
from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.http import Request
from twisted.internet import task

log = logging.getLogger(__name__)


class JobRecorder:
    """Extension: set up Django and the crawl's job when the spider opens, record its end when it closes.

    It runs after the item pipelines have closed (their last batch stored), and also when storage is off
    (``ITEM_PIPELINES={}``), so a job never stays ``running`` after its process ended cleanly.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> JobRecorder:
        ext = cls(crawler)
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self) -> None:
        # local: the pipeline module imports Django, which is set up only now
        from crawler.pipelines import django_ready, job_for_spider

        django_ready()
        job_for_spider(self.crawler.spider)  # sets the spider's job_id for a plain ``scrapy crawl``

    def closed(self, reason: str) -> None:
        # local: datastore.services needs Django, which ``opened`` set up
        from django.db import connection

        from datastore import services

        spider = self.crawler.spider
        stats = dict(self.crawler.stats.get_stats())
        stats["finish_reason"] = reason
        stats["failures"] = getattr(spider, "failures", {})
        store_failures = int(stats.get("fsml/store_failed", 0))
        why = ""
        if store_failures:
            why = f"{store_failures} item(s) could not be stored (see the crawl log)"
        elif reason not in ("finished", "closespider_pagecount"):
            why = f"the crawl stopped early: {reason}"
        try:
            if self.crawler.settings.getbool("FSML_SHARED_JOB"):  # the parent closes a distributed job
                services.add_process_stats(spider.job_id, failed=bool(why), stats=stats, reason=why)
            else:
                services.finish_crawl_job(spider.job_id, failed=bool(why), stats=stats, reason=why)
        except Exception as exc:  # the parent (crawler.run) fails a job its process left running
            log.error("could not record the end of crawl job %s: %s", spider.job_id, exc)
        finally:
            connection.close()


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

    def opened(self) -> None:
        self.loop = task.LoopingCall(self.write)
        self.loop.start(self.interval, now=False)

    def write(self) -> None:
        # local: datastore.services needs Django, which the database pipeline sets up when the spider opens
        from datastore import services

        job_id = getattr(self.crawler.spider, "job_id", None)
        if job_id is None:
            return
        stats = self.crawler.stats
        try:
            services.write_live_counts(
                job_id, stats.get_value("response_received_count", 0), stats.get_value("log_count/ERROR", 0)
            )
        except Exception as exc:  # live stats are best effort; the final write happens at close
            log.warning("could not write live crawl stats: %s", exc)

    def closed(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


class SharedFrontierIdle:
    """Extension for distributed crawls: a process closes only when the shared frontier is empty and every
    other process of the job is idle too (otherwise the first process to run dry would quit early).

    Each process keeps a short-lived "alive" key and joins the job's idle set while it has nothing to do.
    """

    ALIVE_TTL = 60

    def __init__(self, crawler: Any, url: str, prefix: str) -> None:
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

    def opened(self) -> None:
        self.redis.set(f"{self.prefix}:alive:{self.me}", 1, ex=self.ALIVE_TTL)

    def busy(self, request: Request | None = None) -> None:
        if self.idle:
            self.redis.srem(f"{self.prefix}:idle", self.me)
            self.idle = False

    def spider_idle(self) -> None:
        self.redis.set(f"{self.prefix}:alive:{self.me}", 1, ex=self.ALIVE_TTL)
        scheduler = self.crawler.engine.scheduler
        if scheduler is not None and scheduler.has_pending_requests():
            self.busy()
            raise DontCloseSpider
        self.redis.sadd(f"{self.prefix}:idle", self.me)
        self.idle = True
        alive = {k.decode().rsplit(":", 1)[1] for k in self.redis.scan_iter(f"{self.prefix}:alive:*")}
        idle = {m.decode() for m in cast(set[bytes], self.redis.smembers(f"{self.prefix}:idle"))}
        if not alive <= idle:
            raise DontCloseSpider  # another process may still add to the frontier

    def closed(self) -> None:
        self.redis.delete(f"{self.prefix}:alive:{self.me}")
