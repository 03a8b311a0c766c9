"""Downloader middlewares: a crawl keeps to its site's origins; a resumed job does not fetch again the item pages
it already stored."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request

from crawler.extract import canonical_url

log = logging.getLogger(__name__)


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the port filled in from the scheme when the URL has none."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme, 0)


def site_name(url: str) -> str:
    """A site's name as sources are named by default: its host, with the port unless it is the scheme's default
    (``example.org``, ``127.0.0.1:8312``)."""
    scheme, host, port = origin(url)
    return host if port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"


class Offsite(IgnoreRequest):
    """A request for another origin (scheme, host or port) than the crawl's (the spider counts it as ``offsite``)."""


class StayOnOrigin:
    """Downloader middleware: drop requests outside the spider's ``allowed_origins`` (its start URLs' scheme, host
    and port), before robots.txt is fetched for them. Scrapy's OffsiteMiddleware compares host names only, so a
    crawl of 127.0.0.1:8312 would follow links to 127.0.0.1:8000. A spider with ``allowed_origins = None`` (the site
    spider given ``domains``) is left to the OffsiteMiddleware."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> StayOnOrigin:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        allowed = getattr(self.crawler.spider, "allowed_origins", None)
        if allowed is None or origin(request.url) in allowed:
            return None
        self.crawler.stats.inc_value("fsml/offsite_filtered")
        raise Offsite(f"{request.url} is outside the crawl's origins")


class AlreadyStored(IgnoreRequest):
    """A resumed job skips a page it stored before it was interrupted (the spider counts it as ``already_stored``)."""


class SkipStoredPages:
    """Downloader middleware for resumed jobs: item pages this job already stored are not fetched again.

    Listing pages are fetched again to find the links that a killed run had not followed yet. Without an
    ``extract`` pattern a site crawl cannot tell the two apart, so it fetches every page again (see
    ``ExtractingSpider.skip_if_stored``).
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stored: set[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> SkipStoredPages:
        mw = cls(crawler)
        crawler.signals.connect(mw.opened, signal=signals.spider_opened)
        return mw

    def opened(self, spider: Any) -> None:
        # local: the models need Django, which the database pipeline sets up when the spider opens
        from datastore.models import Item

        resumed = self.crawler.settings.getbool("FSML_RESUME")
        if resumed and getattr(spider, "job_id", None) is not None:
            self.stored = set(Item.objects.filter(crawl_job_id=spider.job_id).values_list("url_hash", flat=True))
            log.info("resuming job %s: %d pages already stored", spider.job_id, len(self.stored))

    def process_request(self, request: Request) -> None:
        if not self.stored or not self.crawler.spider.skip_if_stored(request.url):
            return None
        # local: datastore.services needs Django, which the database pipeline sets up when the spider opens
        from datastore.services import sha256_text

        if sha256_text(canonical_url(request.url)) in self.stored:
            self.crawler.stats.inc_value("fsml/resume/already_stored")
            raise AlreadyStored("already stored by this job before it was interrupted")
        return None
