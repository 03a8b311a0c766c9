"""The sitemap spider: reads sitemap.xml (or robots.txt Sitemap: lines) and extracts every listed page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import Response
from scrapy.spiders import SitemapSpider as ScrapySitemapSpider

from crawler.middlewares import origin
from crawler.spiders.common import ExtractingSpider


class SitemapSpider(ExtractingSpider, ScrapySitemapSpider):
    """Arguments: ``sitemap_url`` (comma-separated; a robots.txt URL works too), ``extract``, ``images``,
    ``job_id``, as for the site spider."""

    name = "sitemap"

    def __init__(self, sitemap_url: str, extract: str = "", images: str = "", job_id: str = "", **kwargs: Any) -> None:
        self.sitemap_urls = [u.strip() for u in sitemap_url.split(",") if u.strip()]
        self.sitemap_rules = [("", "parse")]
        super().__init__(**kwargs)
        self.allowed_domains = sorted({urlsplit(u).hostname or "" for u in self.sitemap_urls})
        self.allowed_origins = {origin(u) for u in self.sitemap_urls}  # crawler.middlewares.StayOnOrigin
        self.start_urls = self.sitemap_urls
        self.setup_extraction(job_id, extract, images)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        decoded = self.decode(response)
        if decoded is not None:
            yield from self.parse_page(*decoded)
