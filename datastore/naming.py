"""An item's human name, for every page and command that lists items.

Items imported from a file carry pseudo-URLs (``import://SOURCE/<64 hex content hash>``) that mean nothing to a
person, so a name is, in order: the title, a real ``http(s)`` URL, the image's file name, the first words of
the text, and only then a generic "imported item". A pseudo-URL's hash is never shown. Pure: no Django.
"""

from __future__ import annotations

from pathlib import PurePath

SNIPPET = 60  # characters of a text used as a name
UNNAMED = "imported item"


def web_url(url: str | None) -> str:
    """``url`` when it is a real web address (http or https), else ""."""
    url = (url or "").strip()
    return url if url.lower().startswith(("http://", "https://")) else ""


def item_name(title: str | None = "", url: str | None = "", image: str | None = "", text: str | None = "") -> str:
    """The name a person reads for an item.

    Args:
        title: the item's title (an image import keeps the uploaded file name there).
        url: its URL or canonical URL; used only when it is http(s), never an ``import://`` pseudo-URL.
        image: the path of its image (the file name is used).
        text: its text; the first words name a text item that has nothing better.

    Returns:
        A short, non-empty name.
    """
    if title and title.strip():
        return " ".join(title.split())
    if found := web_url(url):
        return found
    if image and image.strip():
        return PurePath(image.strip()).name or image.strip()
    words = " ".join((text or "").split())
    if words:
        return words if len(words) <= SNIPPET else words[: SNIPPET - 1].rstrip() + "…"
    return UNNAMED
