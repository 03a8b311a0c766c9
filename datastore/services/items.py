"""Items of record: sources, crawled pages stored in bulk, imported texts and images."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from datastore.db import retry_deadlocks
from datastore.models import CrawlJob, Item, Source
from datastore.services.feeds import feed_batch

MAX_URL = 2000


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_or_create_source(name: str, base_url: str, licence_note: str = "") -> Source:
    source, _ = Source.objects.get_or_create(name=name, defaults={"base_url": base_url, "licence_note": licence_note})
    return source


class ItemError(ValueError):
    """A crawled item that cannot be stored; carries its URL, the field and the reason."""

    def __init__(self, url: str, field: str, reason: str) -> None:
        super().__init__(f"{url}: {field}: {reason}")
        self.url, self.field, self.reason = url, field, reason


@dataclass
class StoreResult:
    """What happened to one batch of crawled items."""

    stored: int = 0  # new items
    updated: int = 0  # a known URL with new content
    unchanged: int = 0
    duplicates: int = 0  # content already stored under another URL (or by another crawler)
    failed: list[ItemError] = field(default_factory=list)


def build_item(job: CrawlJob, raw: dict[str, Any]) -> Item:
    """Validate one crawled item and turn it into an unsaved Item. Raises ItemError."""
    url = str(raw.get("url") or "")
    canonical = str(raw.get("canonical_url") or "")
    for name, value in (("url", url), ("canonical_url", canonical)):
        if not value:
            raise ItemError(url, name, "missing")
        if len(value) > MAX_URL:
            raise ItemError(url, name, f"longer than {MAX_URL} characters")
    text, image = str(raw.get("text") or ""), str(raw.get("image") or "")
    if not text.strip() and not image:
        raise ItemError(url, "text", "no text and no image")
    return Item(
        source_id=job.source_id,
        crawl_job=job,
        kind=Item.Kind.IMAGE if image else Item.Kind.TEXT,
        url=url,
        canonical_url=canonical,
        url_hash=sha256_text(canonical),
        content_hash=str(raw.get("content_hash") or sha256_text(text)),
        title=str(raw.get("title") or "")[:500],
        text=text,
        image=image[:500],
        metadata=raw.get("metadata") or {},
        http_status=int(raw.get("http_status") or 200),
        robots=str(raw.get("robots") or "allowed")[:16],
        fetched_at=raw.get("fetched_at") or timezone.now(),
    )


def store_items(job: CrawlJob, items: Iterable[dict[str, Any]]) -> StoreResult:
    """Store a batch of crawled items in one transaction and add the outcome to the job's counters.

    New URLs are inserted, known URLs with new content updated, unchanged ones skipped. The unique
    constraints on (source, URL) and (source, content) decide races between crawler processes; a
    deadlock between them is retried. Items that fail validation are reported, never stored, and do not
    stop the rest of the batch. After the batch commits, projects that follow the source (``SourceFeed``)
    take its new and changed items that pass their filters.
    """
    result = StoreResult()
    rows: dict[str, Item] = {}
    repeats = StoreResult()  # a URL twice in one batch: the last one is stored, each earlier one counted
    for raw in items:
        try:
            row = build_item(job, raw)
        except ItemError as exc:
            result.failed.append(exc)
            continue
        if (earlier := rows.get(row.url_hash)) is not None:
            if earlier.content_hash == row.content_hash:
                repeats.unchanged += 1
            else:
                repeats.duplicates += 1
        rows[row.url_hash] = row
    outcome = _store_batch(job, rows, result.failed, repeats)
    if outcome.stored or outcome.updated:
        feed_batch(job, sorted(rows))  # projects that follow the source take the new items, once committed
    return outcome


@retry_deadlocks()
def _store_batch(job: CrawlJob, rows: dict[str, Item], failed: list[ItemError], repeats: StoreResult) -> StoreResult:
    """One transaction for the batch and the job's counters; rerun whole after a deadlock between crawlers.

    Every item of the batch is counted once: new, updated, unchanged, duplicate or failed (``repeats`` counts
    the earlier copies of a URL the batch holds twice)."""
    with transaction.atomic():
        outcome = _store_rows(job, rows)
        outcome.failed = failed
        outcome.unchanged += repeats.unchanged
        outcome.duplicates += repeats.duplicates
        CrawlJob.objects.filter(pk=job.pk).update(
            items_stored=F("items_stored") + outcome.stored,
            items_updated=F("items_updated") + outcome.updated,
            items_unchanged=F("items_unchanged") + outcome.unchanged,
            items_duplicate=F("items_duplicate") + outcome.duplicates,
            items_failed=F("items_failed") + len(outcome.failed),
        )
    return outcome


def _store_rows(job: CrawlJob, rows: dict[str, Item]) -> StoreResult:
    result = StoreResult()
    keys = sorted(rows)  # one lock order for every process
    existing = {
        row.url_hash: row for row in Item.objects.select_for_update().filter(source_id=job.source_id, url_hash__in=keys)
    }
    for url_hash, old in existing.items():
        new = rows[url_hash]
        if old.content_hash == new.content_hash:
            result.unchanged += 1
            continue
        new.pk, new.created_at = old.pk, old.created_at
        try:
            with transaction.atomic():
                new.save()
            result.updated += 1
        except IntegrityError:  # the new content is already stored under another URL
            result.duplicates += 1
    fresh = [rows[k] for k in keys if k not in existing]
    Item.objects.bulk_create(fresh, ignore_conflicts=True)
    inserted = Item.objects.filter(
        source_id=job.source_id, crawl_job=job, url_hash__in=[row.url_hash for row in fresh]
    ).count()
    result.stored = inserted
    result.duplicates += len(fresh) - inserted
    return result


def import_texts(source_name: str, texts: list[str]) -> list[Item]:
    """Store uploaded texts as items of a source (one per distinct text); returns them in input order."""
    source = get_or_create_source(source_name, "import://" + source_name[:480])
    hashes = [sha256_text(t) for t in texts]
    now = timezone.now()
    fresh = [
        Item(
            source=source,
            kind=Item.Kind.TEXT,
            url=f"import://{source.pk}/{h}",
            canonical_url=f"import://{source.pk}/{h}",
            url_hash=sha256_text(f"import://{source.pk}/{h}"),
            content_hash=h,
            text=t,
            fetched_at=now,
            robots="not_checked",
        )
        for t, h in zip(texts, hashes, strict=True)
    ]
    Item.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=1000)
    return _items_by_content(source, hashes)


def _items_by_content(source: Source, hashes: list[str]) -> list[Item]:
    """The source's items with these content hashes, in the same order (stored ones and new ones alike)."""
    wanted, by_hash = sorted(set(hashes)), {}
    for i in range(0, len(wanted), 500):  # SQLite allows only so many query parameters
        by_hash.update(
            {it.content_hash: it for it in Item.objects.filter(source=source, content_hash__in=wanted[i : i + 500])}
        )
    return [by_hash[h] for h in hashes]


IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp"}
MAX_IMAGE_PIXELS = 50_000_000


def check_image(name: str, data: bytes) -> str:
    """The file suffix of an uploaded image, after Pillow has read it whole. Raises ItemError."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind, width, height = img.format or "", img.width, img.height
            if width * height <= MAX_IMAGE_PIXELS:  # decoded only when small enough to hold
                img.load()  # decodes every byte: a truncated or corrupt file fails here
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ItemError(name, "image", f"not a readable image: {exc}") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise ItemError(name, "image", f"{width}x{height} is over {MAX_IMAGE_PIXELS:,} pixels")
    if kind not in IMAGE_FORMATS:
        raise ItemError(name, "image", f"{kind or 'unknown'} images are not accepted; use {', '.join(IMAGE_FORMATS)}")
    return IMAGE_FORMATS[kind]


def import_images(source_name: str, files: list[tuple[str, bytes]], store: Path) -> list[Item]:
    """Store uploaded images (content-addressed under ``store``) as image items; returns them in input order.

    Every file is checked first: one unreadable file refuses them all, and nothing is written.
    """
    suffixes = [check_image(name, data) for name, data in files]
    stored = [store_image_file(name, data, store, suffix) for (name, data), suffix in zip(files, suffixes, strict=True)]
    return image_items(source_name, stored)


@dataclass(frozen=True)
class StoredImage:
    """An image file in the content-addressed store: its original name, SHA-256 and stored path; ``written`` when
    this call added the file to the store (it was not there before)."""

    name: str
    digest: str
    path: str
    written: bool = False


def store_image_file(name: str, data: bytes, store: Path, suffix: str | None = None) -> StoredImage:
    """Check one image (``check_image``, unless its suffix is given) and write it under ``store`` by content.

    The store is content-addressed: a file already there is reused. A caller whose import is refused later
    removes the files it wrote (``written``) that no item records. Raises ItemError for an unreadable or unsupported
    image.
    """
    suffix = suffix or check_image(name, data)
    digest = hashlib.sha256(data).hexdigest()
    path = store / digest[:2] / f"{digest}{suffix}"
    if path.exists():
        return StoredImage(name, digest, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)  # atomic: a reader never sees half a file
    return StoredImage(name, digest, str(path), written=True)


def image_file_name(title: str, image: str) -> str:
    """An image item's file name: its title (an import keeps the uploaded name there) or the stored file's name;
    empty for a text item."""
    return (title or PurePath(image).name) if image else ""


def image_items(source_name: str, stored: list[StoredImage]) -> list[Item]:
    """Image items of a source for stored files (one per distinct content), in input order, made in batches.

    A new item keeps the original file name in ``title`` and ``metadata["file_name"]``; an item already stored
    keeps its own.
    """
    source = get_or_create_source(source_name, "import://" + source_name[:480])
    now = timezone.now()
    rows = []
    for image in stored:
        url = f"import://{source.pk}/{image.digest}"
        rows.append(
            Item(
                source=source,
                kind=Item.Kind.IMAGE,
                url=url,
                canonical_url=url,
                url_hash=sha256_text(url),
                content_hash=image.digest,
                title=image.name[:500],
                image=image.path,
                metadata={"file_name": image.name},
                fetched_at=now,
                robots="not_checked",
            )
        )
    Item.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return _items_by_content(source, [r.content_hash for r in rows])
