"""Page-level extraction: canonical URLs without tracking parameters, main text and metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import py3langid
import trafilatura
from lxml.html import HtmlElement
from trafilatura.settings import use_config
from trafilatura.utils import load_html
from w3lib.url import canonicalize_url

TRACKING_PARAMS = re.compile(
    r"^(utm_[a-z]+|gclid|dclid|fbclid|msclkid|mc_cid|mc_eid|_ga|_gl|yclid|igshid|ref_src|spm)$", re.IGNORECASE
)

_CONFIG = use_config()
# Short texts (reviews, posts) are content too: trafilatura's defaults drop anything under 250 characters.
_CONFIG.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
_CONFIG.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
_CONFIG.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # no signal-based timeout inside the reactor


def canonical_url(url: str) -> str:
    """Canonical form: sorted query, no fragment, no tracking parameters (utm_*, gclid, fbclid...)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k)]
    cleaned = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))
    return canonicalize_url(cleaned)


def looks_binary(body: bytes) -> bool:
    """True for bodies that are not text whatever their Content-Type says (NUL bytes in the first 2 KiB)."""
    return b"\x00" in body[:2048]


# Header-link marks: Sphinx's ``a.headerlink`` ("¶", "Permalink to this headline"), the "#" anchors of
# PostgreSQL's and other docs, and the like; dropped from titles and text (the text after them is kept).
HEADER_LINK_TEXT = {"", "¶", "#", "§", "🔗"}
HEADER_LINK_TITLE = re.compile(r"permalink|link to this", re.IGNORECASE)
TRAILING_MARK = re.compile(r"(\s+#|\s*[¶§])\s*$")
WHITESPACE = re.compile(r"\s+")
MIN_DETECT_CHARS = 20  # shorter texts give no reliable language
DETECT_SAMPLE_CHARS = 5000  # enough to tell a language; the whole of a 5 MiB page would stall the reactor


@dataclass
class Extracted:
    title: str
    text: str
    language: str
    published: str
    meta: dict[str, str] = field(default_factory=dict)
    language_detected: bool = False  # the page declared no language: it was detected from the text


def tidy_headings(tree: HtmlElement) -> None:
    """Drop the permalink anchors that documentation generators put after headings, and make each heading one
    line (a heading wrapped in the source would keep its line breaks in the text); in place."""
    for anchor in list(tree.iter("a")):
        href, text = anchor.get("href") or "", (anchor.text_content() or "").strip()
        classes = (anchor.get("class") or "").split()
        looks_like_mark = text in HEADER_LINK_TEXT or HEADER_LINK_TITLE.search(f"{text} {anchor.get('title', '')}")
        is_mark = href.startswith("#") and len(anchor) == 0 and bool(looks_like_mark)
        if "headerlink" in classes or is_mark:
            anchor.drop_tree()  # keeps the anchor's tail text
    for heading in tree.xpath("//h1|//h2|//h3|//h4|//h5|//h6"):
        for node in heading.iter():
            if node.text:
                node.text = WHITESPACE.sub(" ", node.text)
            if node is not heading and node.tail:
                node.tail = WHITESPACE.sub(" ", node.tail)


def _clean(text: str) -> str:
    return TRAILING_MARK.sub("", " ".join(text.split()))


def page_title(tree: HtmlElement) -> str:
    """The page's one ``<h1>`` in full (inline code included), else its ``<title>``; "" when it has neither."""
    h1 = tree.xpath("//h1")
    if len(h1) == 1 and (title := _clean(h1[0].text_content())):
        return title
    return _clean(tree.findtext(".//title") or "")


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language (py3langid, its model ships in the package); "" if too short."""
    if sum(c.isalpha() for c in text) < MIN_DETECT_CHARS:
        return ""
    code, _ = py3langid.classify(text[:DETECT_SAMPLE_CHARS])
    return str(code)


def extract(html: str, url: str, meta: dict[str, str] | None = None, lang: str = "") -> Extracted | None:
    """Main text and metadata of an HTML page with trafilatura; None when it has no main text.

    The title is the page's ``<h1>`` or ``<title>`` (trafilatura's guess only when it has neither: it can take
    an admonition's "Note" for the title); header-link marks are dropped from title and text. ``lang`` is the
    declared language (``<html lang>``); a page that declares none has it detected from its text.
    """
    tree = load_html(html)
    if tree is None:
        return None
    tidy_headings(tree)
    title = page_title(tree)
    doc = trafilatura.bare_extraction(tree, url=url, with_metadata=True, include_comments=False, config=_CONFIG)
    if doc is None:
        return None
    data: dict[str, Any] = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (data.get("text") or "").strip()
    if not text:
        return None
    declared = lang or str(tree.xpath("string(/html/@lang)")) or data.get("language") or ""
    language = declared.strip().split("-")[0].lower()
    detected = not language
    if detected:
        language = detect_language(text)
    return Extracted(
        title=title or _clean(data.get("title") or ""),
        text=text,
        language=language,
        published=data.get("date") or "",
        meta=meta or {},
        language_detected=detected and bool(language),
    )
