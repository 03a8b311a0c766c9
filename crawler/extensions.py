"""Crawl extensions: live stats on the CrawlJob row, and the shared idle check of a distributed crawl."""

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
