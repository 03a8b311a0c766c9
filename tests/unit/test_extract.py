"""Page decoding and extraction without a crawl: charsets, titles of documentation pages, languages, origins."""

from __future__ import annotations

import pytest

from crawler.decode import UndecodableError, decode_body
from crawler.extract import extract
from crawler.middlewares import origin, site_name
from tests.fixture_site import UNDECODABLE

CAFE = "<html><body><article><p>Café crème, a short page.</p></article></body></html>"

# Written to look like a page of the Python documentation (Sphinx): "¶" header links after every heading,
# inline code in the h1, the site name in <title>.
SPHINX_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<title>asyncio — Asynchronous I/O &#8212; Python 3.12.1 documentation</title></head><body>
<div class="related"><ul><li><a href="/">Python</a> &#187;</li></ul></div>
<div class="body" role="main"><section id="module-asyncio">
<h1><code class="xref py py-mod docutils literal notranslate"><span class="pre">asyncio</span></code> — Asynchronous
I/O<a class="headerlink" href="#module-asyncio" title="Link to this heading">¶</a></h1>
<p>asyncio is a library to write concurrent code using the async/await syntax. It is used as a foundation
for multiple Python asynchronous frameworks that provide high-performance network and web servers.</p>
<section id="running">
<h2>Running <code class="docutils literal notranslate"><span class="pre">asyncio.run()</span></code>
from a script<a class="headerlink" href="#running" title="Permalink to this headline">¶</a></h2>
<p>Here is a small program that prints hello, waits one second and prints world, all in one event loop.</p>
</section></section></div></body></html>"""

# Written to look like a PostgreSQL reference page (DocBook): no h1, the title in an h2 without class, "#"
# anchors after headings, and admonitions titled "Note" and "Tip" in h3.title.
POSTGRES_PAGE = """<!DOCTYPE html><html><head><title>PostgreSQL: Documentation: 16: CREATE TABLE</title></head>
<body><div id="docContent"><div class="refentry" id="SQL-CREATETABLE">
<div class="refnamediv"><h2><span class="refentrytitle">CREATE TABLE</span></h2><p>CREATE TABLE — define a new
table</p></div><div class="refsect1" id="id-1"><h2>Description <a href="#id-1" class="id_link">#</a></h2>
<p>CREATE TABLE will create a new, initially empty table in the current database. The table will be owned by the
user issuing the command.</p>
<div class="note"><h3 class="title">Note</h3><p>Before PostgreSQL 8.3, these functions would silently accept
values of several non-string data types as well.</p></div>
<div class="tip"><h3 class="title">Tip</h3><p>Use the concatenation operator to join strings together in one
expression of any length you like.</p></div></div></div></div></body></html>"""


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "source"),
    [
        (CAFE.encode("latin-1"), "text/html; charset=foobar-9", "cp1252", "detected"),  # unknown charset
        (CAFE.encode("latin-1"), "text/html; charset=utf-8", "cp1252", "detected"),  # UTF-8 declared over Latin-1
        (CAFE.encode("utf-8"), "text/html; charset=foobar-9", "utf-8", "detected"),
        (CAFE.encode("utf-8"), "text/html; charset=UTF-8", "utf-8", "header"),
        (b"<meta charset='iso-8859-1'>" + CAFE.encode("latin-1"), "text/html", "cp1252", "meta"),
        (b"<meta charset='utf-8'>" + CAFE.encode("latin-1"), "text/html", "cp1252", "detected"),  # the meta is wrong
        (b"\xef\xbb\xbf" + CAFE.encode("utf-8"), "text/html; charset=latin-1", "utf-8", "bom"),
    ],
)
def test_a_body_decodes_from_the_first_charset_that_reads_it_cleanly(
    body: bytes, content_type: str, encoding: str, source: str
) -> None:
    decoded = decode_body(body, content_type)
    assert "Café crème, a short page." in decoded.text  # never "crčme" nor U+FFFD
    assert (decoded.encoding, decoded.source) == (encoding, source)


def test_a_body_no_charset_reads_is_refused_with_the_charsets_tried() -> None:
    with pytest.raises(UndecodableError, match=r"\(utf-8\)"):
        decode_body(b"<html><body><p>" + UNDECODABLE, "text/html; charset=utf-8")


def test_a_sphinx_page_is_titled_by_its_h1_without_header_links() -> None:
    page = extract(SPHINX_PAGE, "https://docs.python.org/3/library/asyncio.html")
    assert page is not None
    assert page.title == "asyncio — Asynchronous I/O"
    assert "¶" not in page.text and "Permalink" not in page.text
    assert "Running asyncio.run() from a script" in page.text  # inline code in a heading keeps its words


def test_a_postgres_page_is_titled_by_its_title_not_an_admonition() -> None:
    page = extract(POSTGRES_PAGE, "https://www.postgresql.org/docs/16/sql-createtable.html")
    assert page is not None
    assert page.title == "PostgreSQL: Documentation: 16: CREATE TABLE"
    assert "#" not in page.text


def test_the_language_is_detected_only_when_the_page_declares_none() -> None:
    page = extract(POSTGRES_PAGE, "https://www.postgresql.org/docs/16/sql-createtable.html")
    assert page is not None and (page.language, page.language_detected) == ("en", True)
    french = "<html><body><article><p>Le robot doit garder cette phrase telle quelle, accents compris.</p></article>"
    page = extract(french + "</body></html>", "http://x/")
    assert page is not None and (page.language, page.language_detected) == ("fr", True)
    declared = extract(french.replace("<html>", "<html lang='de-AT'>") + "</body></html>", "http://x/")
    assert declared is not None and (declared.language, declared.language_detected) == ("de", False)
    assert extract(french + "</body></html>", "http://x/", lang="es") is not None
    short = extract("<html><body><article><p>OK.</p></article></body></html>", "http://x/")
    assert short is not None and (short.language, short.language_detected) == ("", False)  # too short to tell


def test_origins_and_site_names_count_the_port() -> None:
    assert origin("http://127.0.0.1:8312/a") != origin("http://127.0.0.1:8000/")
    assert origin("http://Example.org/") == origin("http://example.org:80/x") == ("http", "example.org", 80)
    assert origin("https://example.org/") != origin("http://example.org/")
    assert site_name("http://127.0.0.1:8312/docs/") == "127.0.0.1:8312"
    assert site_name("https://example.org:443/") == "example.org"
