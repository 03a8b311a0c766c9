"""How an item is shown to the browser and API clients: one shape for the labelling page and the data manager."""

from __future__ import annotations

from typing import Any

from datastore.models import Item
from datastore.services.items import image_file_name

WEB_SCHEMES = ("http://", "https://")


def web_link(item: Item) -> str | None:
    """The page the item came from, when it came from the web; None for an import (``import://…``)."""
    return item.canonical_url if item.canonical_url.startswith(WEB_SCHEMES) else None


def item_name(item: Item) -> str:
    """What a person calls the item: its title, else the page it came from, else its file name, else its number;
    never an import's pseudo-URL or a hash."""
    return item.title or web_link(item) or image_file_name(item.title, item.image) or f"Item {item.pk}"


def item_payload(item: Item) -> dict[str, Any]:
    """The item's fields every page shows; its image through the image endpoint, never its path on disk. ``name``
    is what to call it, ``link`` the web page it came from (None for an import); ``url`` is kept as stored."""
    return {
        "id": item.pk,
        "kind": item.kind,
        "title": item.title,
        "text": item.text,
        "name": item_name(item),
        "url": item.canonical_url,
        "link": web_link(item),
        "image": f"/api/items/{item.pk}/image/" if item.image else None,
        "file_name": image_file_name(item.title, item.image),
        "content_hash": item.content_hash,
    }
