"""A sample website on 127.0.0.1 built from a real labelled corpus, for the demo and the tests.

Layout: ``/`` links every category; ``/category/<label>/?page=N`` lists 50 posts a page with a next link;
``/post/<n>/`` shows one text with its category in a breadcrumb and a ``<meta name="category">``.
"""

from __future__ import annotations

import html
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

from deploy.demo.corpora import LabelledText, sentiment_corpus

PAGE_SIZE = 50
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


@dataclass
class SampleSite:
    """The pages of the site, built once from labelled texts."""

    posts: list[LabelledText]
    by_label: dict[str, list[int]] = field(default_factory=dict)
    base: str = "/"

    def __post_init__(self) -> None:
        index: dict[str, list[int]] = defaultdict(list)
        for n, post in enumerate(self.posts):
            index[post.label].append(n)
        self.by_label = dict(sorted(index.items()))

    def render(self, path: str, query: str) -> tuple[int, str, str]:
        """Return (status, content type, body) for a request path."""
        if path == "/robots.txt":
            return 200, "text/plain", "User-agent: *\nDisallow: /private/\nSitemap: /sitemap.xml\n"
        if path == "/sitemap.xml":
            urls = "".join(f"<url><loc>{self.base}post/{n}/</loc></url>" for n in range(len(self.posts)))
            body = f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="{SITEMAP_NS}">{urls}</urlset>'
            return 200, "application/xml", body
        if path == "/":
            links = "".join(
                f'<li><a href="/category/{label}/">{label}</a> ({len(ids)})</li>'
                for label, ids in self.by_label.items()
            )
            links += '<li><a href="/private/drafts/">drafts</a></li>'  # disallowed by robots.txt
            return 200, "text/html", _page("Sample reviews", f"<h1>Sample reviews</h1><ul>{links}</ul>")
        parts = [p for p in path.split("/") if p]
        if len(parts) == 2 and parts[0] == "category" and parts[1] in self.by_label:
            return self._category(parts[1], query)
        if len(parts) == 2 and parts[0] == "post" and parts[1].isdigit() and int(parts[1]) < len(self.posts):
            return self._post(int(parts[1]))
        return 404, "text/html", _page("Not found", "<h1>Not found</h1>")

    def _category(self, label: str, query: str) -> tuple[int, str, str]:
        ids = self.by_label[label]
        pages = max(1, math.ceil(len(ids) / PAGE_SIZE))
        try:
            page = int(parse_qs(query).get("page", ["1"])[0])
        except ValueError:
            page = 1
        if not 1 <= page <= pages:
            return 404, "text/html", _page("Not found", "<h1>No such page</h1>")
        chunk = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        items = "".join(f'<li><a href="/post/{n}/">Post {n}</a></li>' for n in chunk)
        nxt = f'<a rel="next" href="/category/{label}/?page={page + 1}">next</a>' if page < pages else ""
        body = f"<h1>{label}</h1><ul class='posts'>{items}</ul>{nxt}"
        return 200, "text/html", _page(f"{label} - page {page}", body)

    def _post(self, n: int) -> tuple[int, str, str]:
        post = self.posts[n]
        body = (
            f'<nav class="breadcrumb"><a href="/">Home</a> / '
            f'<a class="category" href="/category/{post.label}/">{post.label}</a></nav>'
            f"<main><article><p>{html.escape(post.text)}</p></article></main>"
        )
        return 200, "text/html", _page(f"Post {n}", body, meta={"category": post.label})


def _page(title: str, body: str, meta: dict[str, str] | None = None) -> str:
    metas = "".join(f'<meta name="{k}" content="{html.escape(v)}">' for k, v in (meta or {}).items())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"{metas}</head><body>{body}</body></html>"
    )


class _Handler(BaseHTTPRequestHandler):
    site: SampleSite
    delay: float = 0.0

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        if self.delay:
            time.sleep(self.delay)
        url = urlsplit(self.path)
        status, ctype, body = self.site.render(url.path, url.query)
        payload = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- quiet access log
        return


class LocalServer:
    """Serve a request handler on 127.0.0.1 (``port`` 0: any free port) in a background thread; use as a
    context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SampleSiteServer(LocalServer):
    """Serve a SampleSite on 127.0.0.1 in a background thread; use as a context manager."""

    def __init__(self, limit: int | None = None, port: int = 0, seed: int = 0, delay: float = 0.0) -> None:
        """Serve ``limit`` posts (a seeded sample); ``delay`` seconds of latency per response."""
        self.site = SampleSite(sentiment_corpus(limit, seed))
        super().__init__(type("Handler", (_Handler,), {"site": self.site, "delay": delay}), port)

    def __enter__(self) -> Self:
        self.site.base = self.url
        return super().__enter__()
