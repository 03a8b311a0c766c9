"""Page-level extraction: canonical URLs without tracking parameters, main text and metadata."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trafilatura
from trafilatura.settings import use_config
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


@dataclass
class Extracted:
    title: str
    text: str
    language: str
    published: str
    meta: dict[str, str] = field(default_factory=dict)


def extract(html: str, url: str, meta: dict[str, str] | None = None, lang: str = "") -> Extracted | None:
    """Main text and metadata of an HTML page with trafilatura; None when it has no main text."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False, config=_CONFIG)
    if doc is None:
        return None
    data: dict[str, Any] = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (data.get("text") or "").strip()
    if not text:
        return None
    return Extracted(
        title=(data.get("title") or "").strip(),
        text=text,
        language=(data.get("language") or lang or "").split("-")[0].lower(),
        published=data.get("date") or "",
        meta=meta or {},
    )
