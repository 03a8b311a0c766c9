"""Request de-duplication for fsml crawls."""

from __future__ import annotations

from typing import Any

from scrapy.dupefilters import RFPDupeFilter
from scrapy.http import Request


class MemoryDupeFilter(RFPDupeFilter):
    """Request de-duplication kept in memory even with a JOBDIR.

    Scrapy persists seen fingerprints when a request is scheduled, so after a SIGKILL the requests that
    were in flight would never be fetched again. Resumed jobs re-discover links instead, and
    ``crawler.middlewares.SkipStoredPages`` keeps them from fetching what was already stored.
    """

    @classmethod
    def from_crawler(cls, crawler: Any) -> MemoryDupeFilter:
        return cls(None, crawler.settings.getbool("DUPEFILTER_DEBUG"), fingerprinter=crawler.request_fingerprinter)

    def log(self, request: Request, spider: Any) -> None:
        # A redirect back to a page already requested is a redirect loop: record it with its reason.
        if request.url in request.meta.get("redirect_urls", ()) and hasattr(spider, "skip"):
            spider.skip("redirect_loop", request.meta["redirect_urls"][0])
        super().log(request, spider)
