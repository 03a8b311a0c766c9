"""Every write to the data store's models of record goes through here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from datastore.models import CrawlJob, DatasetVersion, Item, ModelVersion, Source


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_or_create_source(name: str, base_url: str, licence_note: str = "") -> Source:
    source, _ = Source.objects.get_or_create(
        name=name, defaults={"base_url": base_url, "licence_note": licence_note}
    )
    return source


def start_crawl_job(source: Source, spider: str, start_urls: list[str]) -> CrawlJob:
    return CrawlJob.objects.create(source=source, spider=spider, start_urls=start_urls)


def finish_crawl_job(job_id: int, failed: bool, stats: dict[str, Any]) -> None:
    CrawlJob.objects.filter(pk=job_id).update(
        status=CrawlJob.Status.FAILED if failed else CrawlJob.Status.FINISHED,
        finished_at=timezone.now(),
        pages_crawled=int(stats.get("response_received_count", 0)),
        errors=int(stats.get("log_count/ERROR", 0)),
        stats={k: v for k, v in stats.items() if isinstance(v, int | float | str)},
    )


def store_items(job: CrawlJob, items: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Store a batch of crawled items in one transaction. Returns (stored or updated, unchanged).

    New pages are inserted, changed pages (same canonical URL, new content) updated, unchanged pages and
    content already stored under another URL skipped. Unique constraints decide races between crawlers.
    """
    batch = {}
    for item in items:
        url_hash = sha256_text(item["canonical_url"])
        batch[url_hash] = Item(
            source_id=job.source_id,
            crawl_job=job,
            kind=item.get("kind", Item.Kind.TEXT),
            url=item["url"],
            canonical_url=item["canonical_url"],
            url_hash=url_hash,
            content_hash=sha256_text(item.get("text", "") + "\x00" + item.get("image", "")),
            title=item.get("title", "")[:500],
            text=item.get("text", ""),
            image=item.get("image", ""),
            metadata=item.get("metadata", {}),
            http_status=item.get("http_status", 200),
            fetched_at=item.get("fetched_at") or timezone.now(),
        )
    if not batch:
        return 0, 0
    with transaction.atomic():
        existing = {
            row.url_hash: row
            for row in Item.objects.select_for_update().filter(source_id=job.source_id, url_hash__in=batch)
        }
        changed = []
        for url_hash, row in existing.items():
            new = batch.pop(url_hash)
            if row.content_hash != new.content_hash:
                new.pk, new.created_at = row.pk, row.created_at
                changed.append(new)
        for row in changed:
            try:
                with transaction.atomic():
                    row.save()
            except IntegrityError:  # new content equals another page's content: keep the first
                changed.remove(row)
        before = Item.objects.filter(source_id=job.source_id).count()
        Item.objects.bulk_create(batch.values(), ignore_conflicts=True)
        created = Item.objects.filter(source_id=job.source_id).count() - before
        stored = created + len(changed)
        unchanged = len(existing) - len(changed)
        CrawlJob.objects.filter(pk=job.pk).update(
            items_stored=_plus("items_stored", stored), items_unchanged=_plus("items_unchanged", unchanged)
        )
    return stored, unchanged


def _plus(field: str, n: int) -> Any:
    from django.db.models import F

    return F(field) + n


def record_dataset_version(**fields: Any) -> DatasetVersion:
    return DatasetVersion.objects.create(**fields)


def register_model_version(
    name: str,
    task_type: str,
    archive_path: str,
    archive_sha256: str,
    manifest: dict[str, Any],
    dataset_version: DatasetVersion | None,
    version: int | None = None,
) -> ModelVersion:
    """Record a packaged model as version ``version`` (default: the next one) of ``name``.

    Versions are immutable: the unique constraint on (name, version) refuses a second row.
    """
    return ModelVersion.objects.create(
        name=name,
        version=version or next_model_version(name),
        task_type=task_type,
        archive_path=archive_path,
        archive_sha256=archive_sha256,
        manifest=manifest,
        dataset_version=dataset_version,
        metrics=manifest.get("metrics", {}),
    )


def next_model_version(name: str) -> int:
    latest = ModelVersion.objects.filter(name=name).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def record_model_metrics(model_version: ModelVersion, split: str, metrics: dict[str, Any]) -> None:
    model_version.metrics = {**model_version.metrics, split: metrics}
    model_version.save(update_fields=["metrics"])
