"""How an item is shown to the browser and API clients: one shape for the labelling page and the data manager."""

from __future__ import annotations

from typing import Any

from datastore.models import Item
from datastore.services.items import image_file_name


def item_payload(item: Item) -> dict[str, Any]:
    """The item's fields every page shows; its image through the image endpoint, never its path on disk."""
    return {
        "id": item.pk,
        "kind": item.kind,
        "title": item.title,
        "text": item.text,
        "url": item.canonical_url,
        "image": f"/api/items/{item.pk}/image/" if item.image else None,
        "file_name": image_file_name(item.title, item.image),
        "content_hash": item.content_hash,
    }
