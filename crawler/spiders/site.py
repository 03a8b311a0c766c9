"""The generic site spider: follows in-domain links from start URLs and extracts main text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response
from scrapy.linkextractors import LinkExtractor

from crawler.extract import canonical_url
from crawler.middlewares import origin
from crawler.spiders.common import ExtractingSpider


class SiteSpider(ExtractingSpider, scrapy.Spider):
    """Crawl one or more sites.

    Arguments (``-a name=value``): ``start_url`` (comma-separated for several); ``domains`` (allowed
    domains and their subdomains, on any scheme and port; default: only the start URLs' scheme, host and
    port); ``depth`` (link depth limit, 0 = none); ``allow`` / ``deny`` (regexes of URLs to follow or not);
    ``extract`` (regex of item pages, default every page); ``images`` ("1" to download images);
    ``job_id`` (the CrawlJob row to record into).
    """

    name = "site"
    follows_links = True

    def __init__(
        self,
        start_url: str,
        domains: str = "",
        depth: str = "0",
        allow: str = "",
        deny: str = "",
        extract: str = "",
        images: str = "",
        job_id: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_urls = [u.strip() for u in start_url.split(",") if u.strip()]
        hosts = domains.split(",") if domains else [urlsplit(u).hostname or "" for u in self.start_urls]
        # allowed_domains is matched against hosts without ports by the OffsiteMiddleware; without ``domains``
        # the crawl also keeps to the start URLs' scheme, host and port (crawler.middlewares.StayOnOrigin).
        self.allowed_domains = sorted({h.strip() for h in hosts if h.strip()})
        self.allowed_origins = None if domains else {origin(u) for u in self.start_urls}
        self.depth_limit = int(depth)
        self.links = LinkExtractor(allow=allow or (), deny=deny or ())
        self.setup_extraction(job_id, extract, images)

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> SiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.settings.set("DEPTH_LIMIT", spider.depth_limit, priority="spider")
        return spider

    async def start(self) -> Any:  # Scrapy >= 2.13
        for url in self.start_urls:
            # Filtered like any link (no dont_filter): a page that links back to the start is not fetched again.
            yield scrapy.Request(canonical_url(url), callback=self.parse, errback=self.on_error)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        decoded = self.decode(response)
        if decoded is None:
            return
        page, encoding = decoded
        yield from self.parse_page(page, encoding)
        for link in self.links.extract_links(page):
            # Follow the canonical URL: one fetch for a page linked with different tracking parameters.
            yield page.follow(canonical_url(link.url), callback=self.parse, errback=self.on_error)
