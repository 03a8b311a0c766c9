"""Crawl jobs: their rows, status and counts, written by the crawl launcher and the crawler processes."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from datastore.models import CrawlJob, Source

# What the spider's skip reasons (crawler.spiders.common) mean, in words; others are Scrapy's or Twisted's
# exception names, and the HTTP ones are "http_<status>".
SKIP_REASONS = {
    "already_stored": "already stored",
    "binary_body": "binary content",
    "image_failed": "image not downloaded",
    "no_main_text": "no main text",
    "not_text": "not a text page",
    "redirect_loop": "too many redirects",
    "robots_forbidden": "forbidden by robots.txt",
    "seen_url": "reached again under another URL",
    "undecodable": "no charset decodes it",
    "ConnectionRefusedError": "connection refused",
    "DNSLookupError": "host name not found",
    "DownloadConnectionRefusedError": "connection refused",
    "DownloadTimeoutError": "timed out",
    "IgnoreRequest": "ignored (size cap or filter)",
    "ResponseNeverReceived": "no response",
    "TCPTimedOutError": "timed out",
    "TimeoutError": "timed out",
}


def skip_reason_text(reason: str) -> str:
    """A skip reason in words: ``http_404`` is "HTTP 404", ``DownloadConnectionRefusedError`` "connection
    refused", ``invalid_url`` "invalid url"; an unknown name is kept as it is."""
    if match := re.fullmatch(r"http_(\d{3})", reason):
        return f"HTTP {match.group(1)}"
    if reason.startswith("invalid_"):
        return f"invalid {reason[len('invalid_') :]}"
    return SKIP_REASONS.get(reason, reason)


def skip_counts(stats: dict[str, Any]) -> list[tuple[str, int, str]]:
    """Why pages yielded nothing: (reason, pages, an example URL), most pages first, from what a crawl stored
    (the spider's ``failures``, {reason: up to 20 sample URLs}, counted by its ``fsml/skipped/REASON`` totals, or
    by each process's totals in a distributed crawl)."""
    failures = stats.get("failures")
    if not isinstance(failures, dict):
        return []
    out = []
    for reason, samples in failures.items():
        samples = samples if isinstance(samples, list) else []
        key = f"fsml/skipped/{reason}"
        per_process = [p.get(key, 0) for p in stats.get("processes", []) if isinstance(p, dict)]
        recorded = stats.get(key)
        total = recorded if isinstance(recorded, int) else sum(per_process) or len(samples)
        out.append((str(reason), int(total), samples[0] if samples else ""))
    return sorted(out, key=lambda row: (-row[1], row[0]))


def describe_skips(stats: dict[str, Any]) -> str:
    """The skip counts in one line: "3 HTTP 404, 1 connection refused (DownloadConnectionRefusedError)", or
    "none"."""
    parts = []
    for reason, pages, _ in skip_counts(stats):
        text = skip_reason_text(reason)
        parts.append(f"{pages} {text}" + (f" ({reason})" if text != reason and not reason.startswith("http_") else ""))
    return ", ".join(parts) or "none"


def pages_fetched(stats: dict[str, Any]) -> int:
    """Responses received for pages (robots.txt's own responses left out)."""
    return int(stats.get("response_received_count", 0)) - int(stats.get("robotstxt/response_count", 0))


def nothing_fetched_reason(stats: dict[str, Any]) -> str:
    """Why a crawl that received no page failed, in words, with the first skipped URL as an example."""
    skips = skip_counts(stats)
    if not skips:
        return "nothing was fetched: no page answered"
    example = next((url for _, _, url in skips if url), "")
    return f"nothing was fetched: {describe_skips(stats)}" + (f", e.g. {example}" if example else "")


def start_crawl_job(source: Source, spider: str, start_urls: list[str]) -> CrawlJob:
    return CrawlJob.objects.create(source=source, spider=spider, start_urls=start_urls)


def add_process_stats(job_id: int, failed: bool, stats: dict[str, Any], reason: str = "") -> None:
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
            if reason:
                job.stats["reason"] = reason
        job.save(update_fields=["pages_crawled", "errors", "stats", "status"])


def finish_crawl_job(job_id: int, failed: bool, stats: dict[str, Any], reason: str = "") -> None:
    """Record a crawler process's end: its counts and stats, and the status, failed with ``reason`` when the process
    says so, or when it fetched no page at all (a dead host, a refused connection: the reason says which)."""
    if not failed and pages_fetched(stats) <= 0:
        failed, reason = True, nothing_fetched_reason(stats)
    kept = {k: v for k, v in stats.items() if isinstance(v, int | float | str | dict)}
    if failed and reason:
        kept["reason"] = reason
    CrawlJob.objects.filter(pk=job_id).update(
        status=CrawlJob.Status.FAILED if failed else CrawlJob.Status.FINISHED,
        finished_at=timezone.now(),
        pages_crawled=int(stats.get("response_received_count", 0)),
        errors=int(stats.get("log_count/ERROR", 0)),
        stats=kept,
    )


def reopen_crawl_job(job_id: int) -> None:
    """Mark a job running again (a resumed crawl)."""
    CrawlJob.objects.filter(pk=job_id).update(status=CrawlJob.Status.RUNNING, finished_at=None)


def write_live_counts(job_id: int, pages_crawled: int, errors: int) -> None:
    """The counts a running crawler process reports every few seconds."""
    CrawlJob.objects.filter(pk=job_id).update(pages_crawled=pages_crawled, errors=errors)


def close_crawl_job(job_id: int, status: str, *, only_from: str | None = None, reason: str = "") -> bool:
    """Set a job's final status (and its end time), unless it has left ``only_from`` meanwhile; returns whether the
    row changed. A job closed as finished that fetched no page is failed instead, with the reason; a failure's
    ``reason`` is kept in its stats (a reason recorded earlier stays)."""
    with transaction.atomic():
        rows = CrawlJob.objects.select_for_update().filter(pk=job_id)
        if only_from is not None:
            rows = rows.filter(status=only_from)
        job = rows.first()
        if job is None:
            return False
        if status == CrawlJob.Status.FINISHED and job.pages_crawled <= 0:
            status, reason = CrawlJob.Status.FAILED, nothing_fetched_reason(job.stats)
        job.status = status
        job.finished_at = job.finished_at or timezone.now()
        if status == CrawlJob.Status.FAILED and reason and not job.stats.get("reason"):
            job.stats = {**job.stats, "reason": reason}
        job.save(update_fields=["status", "finished_at", "stats"])
        return True
