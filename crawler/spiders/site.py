"""A generic site spider: follows in-domain links from a start URL and extracts main text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor
from w3lib.url import canonicalize_url

from crawler.items import PageItem


class SiteSpider(scrapy.Spider):
    """Crawl one site.

    Arguments (``-a name=value``): ``start_url``; ``job_id`` (the CrawlJob row to record into);
    ``depth`` (link depth limit, default 0 = unlimited); ``allow`` / ``deny`` (URL regexes).
    """

    name = "site"

    def __init__(
        self,
        start_url: str,
        job_id: str = "",
        depth: str = "0",
        allow: str = "",
        deny: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start_url]
        self.job_id = int(job_id) if job_id else None
        self.allowed_domains = [urlsplit(start_url).hostname or ""]
        self.custom_depth = int(depth)
        # Off-site links are dropped by the OffsiteMiddleware (allowed_domains compares hosts without ports).
        self.links = LinkExtractor(allow=allow or (), deny=deny or ())

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> SiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.settings.set("DEPTH_LIMIT", spider.custom_depth, priority="spider")
        return spider

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if not hasattr(response, "css"):  # binary body: nothing to extract or follow
            return
        item = self.extract(response)
        if item is not None:
            yield item
        for link in self.links.extract_links(response):
            yield response.follow(link, callback=self.parse)

    def extract(self, response: Response) -> PageItem | None:
        """Main text of an article page, or None for listing pages."""
        # Whitespace runs collapse to one space, as browsers render them (HTML also turns CR LF into LF).
        paragraphs = [" ".join(t.split()) for t in response.css("article ::text").getall() if t.strip()]
        if not paragraphs:
            return None
        meta = {
            name: value
            for name, value in zip(
                response.css("meta[name]::attr(name)").getall(),
                response.css("meta[name]::attr(content)").getall(),
                strict=False,
            )
        }
        return PageItem(
            url=response.url,
            canonical_url=canonicalize_url(response.url),
            title=(response.css("h1::text").get() or response.css("title::text").get() or "").strip(),
            text="\n".join(paragraphs),
            metadata={"meta": meta, "referer": (response.request.headers.get("Referer") or b"").decode()},
            http_status=response.status,
            fetched_at=datetime.now(UTC),
        )
