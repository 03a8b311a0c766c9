"""What every fsml spider shares: page extraction into items, failure accounting, item-page patterns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.decode import Decoded, UndecodableError, decode_body
from crawler.extract import canonical_url, looks_binary
from crawler.extract import extract as extract_page
from crawler.items import ImageItem, PageItem
from crawler.middlewares import AlreadyStored, Offsite

MAX_FAILURE_SAMPLES = 20


class ExtractingSpider:
    """Mixin: ``parse_page`` turns a response into items; ``on_error`` records why a request failed.

    Spider arguments it reads: ``job_id``, ``extract`` (regex of item page URLs; default every page),
    ``images`` ("1" to download images in the main content).
    """

    job_id: int | None
    extract_re: re.Pattern[str] | None
    want_images: bool
    follows_links: bool = False  # the site spider fetches pages for their links too; the sitemap one does not
    crawler: Any
    logger: Any

    def setup_extraction(self, job_id: str, extract: str, images: str) -> None:
        self.job_id = int(job_id) if job_id else None
        self.extract_re = re.compile(extract) if extract else None
        self.want_images = images in ("1", "true", "yes")
        self.failures: dict[str, list[str]] = {}
        self.pages_seen: set[str] = set()  # canonical URLs this process made an item of
        # trafilatura's first call spends about a second on lazy set-up; pay it before downloads start,
        # where it would stall the reactor and time out every request in flight.
        # The language model loads on first use too: a page declaring no language pays it here.
        extract_page(
            "<html><body><article><p>warm up the extractor and its language model</p></article></body></html>",
            "http://x/",
        )

    def is_item_page(self, url: str) -> bool:
        return self.extract_re is None or bool(self.extract_re.search(url))

    def skip_if_stored(self, url: str) -> bool:
        """Whether a resumed job may skip this page once stored: an item page that is not also where links
        are found. A spider that follows links and has no ``extract`` pattern stores listing pages too,
        and must fetch them again to reach what the interrupted run had not; storing them again adds no
        item (a known URL with the same content is counted unchanged)."""
        if not self.is_item_page(url):
            return False
        return self.extract_re is not None or not self.follows_links

    def skip(self, reason: str, url: str) -> None:
        """Count a page that yields nothing, with the reason, and keep a few example URLs."""
        self.crawler.stats.inc_value(f"fsml/skipped/{reason}")
        samples = self.failures.setdefault(reason, [])
        if len(samples) < MAX_FAILURE_SAMPLES:
            samples.append(url)
        self.logger.info("skipped %s: %s", url, reason)

    def on_error(self, failure: Any) -> None:
        """Errback for every request: 4xx/5xx, timeouts, refused connections, robots.txt, size caps."""
        request = failure.request
        if failure.check(Offsite):
            return  # a link off the site is no page of it: counted in the stats only (fsml/offsite_filtered)
        if failure.check(HttpError):
            reason = f"http_{failure.value.response.status}"
        elif failure.check(AlreadyStored):
            reason = "already_stored"
        else:
            # Scrapy's own middlewares say why only in the message of a plain IgnoreRequest.
            reason = type(failure.value).__name__
            text = str(failure.value).lower()
            if "robots.txt" in text:
                reason = "robots_forbidden"
            elif "redirect" in text:
                reason = "redirect_loop"
        self.skip(reason, request.url)

    def decode(self, response: Response) -> tuple[TextResponse, Decoded] | None:
        """The response with its body decoded by ``crawler.decode`` (Scrapy's own decoding replaces what it
        cannot read), as UTF-8; None, with the skip recorded, for a page that is not text or decodes in no
        charset."""
        if looks_binary(response.body):
            self.skip("binary_body", response.url)
            return None
        if not isinstance(response, TextResponse):
            self.skip("not_text", response.url)
            return None
        try:
            content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
            page = decode_body(response.body, content_type)
        except UndecodableError as exc:
            self.skip("undecodable", response.url)
            self.logger.info("%s: %s", response.url, exc)
            return None
        return cast(TextResponse, response.replace(body=page.text.encode("utf-8"), encoding="utf-8")), page

    def parse_page(self, response: TextResponse, decoded: Decoded) -> Iterator[Any]:
        """Items of a decoded page (see ``decode``): the page's text, and its images when asked for."""
        if not self.is_item_page(response.url):
            return
        canonical = canonical_url(response.url)
        if canonical in self.pages_seen:  # e.g. a redirect to a page already fetched under its own URL
            self.skip("seen_url", response.url)
            return
        self.pages_seen.add(canonical)
        meta = {}
        for node in response.css("meta[name]"):
            name, content = node.attrib.get("name", ""), node.attrib.get("content")
            if name and content is not None:
                meta[name] = content
        page = extract_page(response.text, response.url, meta, response.css("html::attr(lang)").get() or "")
        if page is None:
            self.skip("no_main_text", response.url)
            return
        robots = "allowed" if self.crawler.settings.getbool("ROBOTSTXT_OBEY") else "not_checked"
        fetched_at = datetime.now(UTC)
        metadata = {
            "meta": page.meta,
            "language": page.language,
            "language_detected": page.language_detected,
            "published": page.published,
            "encoding": decoded.encoding,
            "encoding_from": decoded.source,
        }
        yield PageItem(
            url=response.url,
            canonical_url=canonical,
            title=page.title,
            text=page.text,
            metadata=metadata,
            http_status=response.status,
            robots=robots,
            fetched_at=fetched_at,
        )
        if self.want_images:
            for img in response.css("article img, main img"):
                src = img.attrib.get("src")
                if src:
                    url = response.urljoin(src)
                    yield ImageItem(
                        url=url,
                        canonical_url=canonical_url(url),
                        image_urls=[url],
                        title=img.attrib.get("alt", ""),
                        http_status=response.status,
                        metadata={"page": response.url, "alt": img.attrib.get("alt", ""), "meta": page.meta},
                        robots=robots,
                        fetched_at=fetched_at,
                    )
