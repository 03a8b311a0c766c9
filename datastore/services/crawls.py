"""Crawl jobs: their rows, status and counts, written by the crawl launcher and the crawler processes."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from datastore.models import CrawlJob, Source


def start_crawl_job(source: Source, spider: str, start_urls: list[str]) -> CrawlJob:
    return CrawlJob.objects.create(source=source, spider=spider, start_urls=start_urls)


def add_process_stats(job_id: int, failed: bool, stats: dict[str, Any]) -> None:
    """Add one process's counts to a job shared by several crawler processes (distributed crawl)."""
    with transaction.atomic():
        job = CrawlJob.objects.select_for_update().get(pk=job_id)
        job.pages_crawled += int(stats.get("response_received_count", 0))
        job.errors += int(stats.get("log_count/ERROR", 0))
        summary = {k: v for k, v in stats.items() if isinstance(v, int | float | str)}
        job.stats = {**job.stats, "processes": [*job.stats.get("processes", []), summary]}
        for reason, urls in stats.get("failures", {}).items():
            job.stats.setdefault("failures", {}).setdefault(reason, []).extend(urls[:20])
        if failed:
            job.status = CrawlJob.Status.FAILED
        job.save(update_fields=["pages_crawled", "errors", "stats", "status"])


def finish_crawl_job(job_id: int, failed: bool, stats: dict[str, Any]) -> None:
    CrawlJob.objects.filter(pk=job_id).update(
        status=CrawlJob.Status.FAILED if failed else CrawlJob.Status.FINISHED,
        finished_at=timezone.now(),
        pages_crawled=int(stats.get("response_received_count", 0)),
        errors=int(stats.get("log_count/ERROR", 0)),
        stats={k: v for k, v in stats.items() if isinstance(v, int | float | str | dict)},
    )


def reopen_crawl_job(job_id: int) -> None:
    """Mark a job running again (a resumed crawl)."""
    CrawlJob.objects.filter(pk=job_id).update(status=CrawlJob.Status.RUNNING, finished_at=None)


def write_live_counts(job_id: int, pages_crawled: int, errors: int) -> None:
    """The counts a running crawler process reports every few seconds."""
    CrawlJob.objects.filter(pk=job_id).update(pages_crawled=pages_crawled, errors=errors)


def close_crawl_job(job_id: int, status: str, *, only_from: str | None = None) -> bool:
    """Set a job's final status (and its end time, when it finished), unless it has left ``only_from``
    meanwhile; returns whether the row changed."""
    rows = CrawlJob.objects.filter(pk=job_id)
    if only_from is not None:
        rows = rows.filter(status=only_from)
    fields: dict[str, Any] = {"status": status}
    if status == CrawlJob.Status.FINISHED:
        fields["finished_at"] = timezone.now()
    return rows.update(**fields) > 0
