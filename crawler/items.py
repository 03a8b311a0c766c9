from __future__ import annotations

import scrapy


class PageItem(scrapy.Item):
    """One page's main text and where and when it came from."""

    url = scrapy.Field()
    canonical_url = scrapy.Field()
    title = scrapy.Field()
    text = scrapy.Field()
    metadata = scrapy.Field()
    http_status = scrapy.Field()
    robots = scrapy.Field()
    fetched_at = scrapy.Field()


class ImageItem(PageItem):
    """One image from a page's main content; Scrapy's images pipeline fills ``images``."""

    image_urls = scrapy.Field()
    images = scrapy.Field()
    image = scrapy.Field()  # path in the file store
    content_hash = scrapy.Field()  # SHA-256 of the stored file
