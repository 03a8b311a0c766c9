"""A page body as text: the declared charset when it decodes cleanly, else the page's own, else detection.

Scrapy's ``TextResponse.text`` decodes with replacement characters (a Latin-1 page served as UTF-8 keeps
U+FFFD where its accents were) and guesses an unknown charset; here every step decodes strictly, and a page
that no step decodes is refused with a reason instead of being stored garbled.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer
from w3lib.encoding import html_body_declared_encoding, read_bom, resolve_encoding

# The HTML standard's fallback for an undeclared document: detection often ties it with cp1250 on short
# Western text (then "crème" would read "crčme"), and the tie goes to it.
FALLBACK = "cp1252"
CHAOS_TIE = 0.01


class UndecodableError(ValueError):
    """No declared charset decodes the body and detection finds none; carries the charsets tried."""

    def __init__(self, declared: list[str]) -> None:
        tried = ", ".join(declared) or "none declared"
        super().__init__(f"the body decodes in no declared charset ({tried}) and detection found none")
        self.declared = declared


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # Python's codec name, e.g. "utf-8", "cp1252"
    source: str  # "bom", "header" (Content-Type), "meta" (<meta charset> / http-equiv) or "detected"


def _strict(body: bytes, name: str | None) -> str | None:
    """The body decoded with ``name`` (a label as pages write it), or None if unknown or not clean."""
    encoding = resolve_encoding(name) if name else None
    if encoding is None:
        return None
    try:
        return body.decode(encoding, errors="strict")
    except (UnicodeDecodeError, LookupError):
        return None


def detect(body: bytes) -> Decoded | None:
    """charset-normalizer's best reading, windows-1252 winning ties; None when it finds none."""
    matches = list(charset_normalizer.from_bytes(body))
    if not matches:
        return None
    least = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= least + CHAOS_TIE]
    if any(FALLBACK in m.could_be_from_charset for m in tied):
        text = _strict(body, FALLBACK)
        if text is not None:
            return Decoded(text, FALLBACK, "detected")
    best = tied[0]
    return Decoded(str(best), codecs.lookup(best.encoding).name, "detected")


def decode_body(body: bytes, content_type: str | None) -> Decoded:
    """Decode a page: BOM, then the Content-Type charset, then the ``<meta>`` one, each only if it decodes
    cleanly, then detection.

    Raises:
        UndecodableError: nothing decodes the body.
    """
    bom, mark = read_bom(body)
    if bom is not None:
        text = _strict(body[len(mark or b"") :], bom)
        if text is not None:
            return Decoded(text, codecs.lookup(bom).name, "bom")
    declared = []
    for source, label in (("header", _header_label(content_type)), ("meta", html_body_declared_encoding(body))):
        if not label:
            continue
        declared.append(label)
        text = _strict(body, label)
        if text is not None:
            return Decoded(text, codecs.lookup(resolve_encoding(label) or label).name, source)
    found = detect(body)
    if found is None:
        raise UndecodableError(declared)
    return found


def _header_label(content_type: str | None) -> str:
    """The charset label of a Content-Type header as the server wrote it ("" when there is none)."""
    match = re.search(r"charset\s*=\s*[\"']?([^\s;\"']+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else ""
