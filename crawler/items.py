from __future__ import annotations

import scrapy


class PageItem(scrapy.Item):
    """One page's extracted content and where it came from."""

    url = scrapy.Field()
    canonical_url = scrapy.Field()
    title = scrapy.Field()
    text = scrapy.Field()
    metadata = scrapy.Field()
    http_status = scrapy.Field()
    fetched_at = scrapy.Field()
