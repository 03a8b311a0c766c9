"""Run a crawl as a real ``scrapy crawl`` process and follow its progress in the database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, Unpack

import redis
from django.conf import settings

from crawler.errors import CrawlError
from datastore import services
from datastore.models import CrawlJob

SPIDERS = ("site", "sitemap")


def job_dir(job_id: int) -> Path:
    return Path(settings.FSML_HOME) / "crawls" / f"job-{job_id}"


class CrawlOptions(TypedDict, total=False):
    """What a crawl may set besides its spider, start URL and source; see ``start_crawl``."""

    licence_note: str
    options: dict[str, str] | None
    resume: int | None
    processes: int
    scrapy_settings: dict[str, str] | None


def crawl(
    spider: str,
    start_url: str,
    source_name: str,
    on_progress: Callable[[int], None] | None = None,
    **more: Unpack[CrawlOptions],
) -> CrawlJob:
    """Crawl with ``spider`` in child ``scrapy crawl`` processes and return the finished CrawlJob.

    The arguments are those of ``start_crawl``; ``on_progress`` is called with the items stored so far.

    Raises:
        CrawlError: unknown spider, unknown job to resume, or the crawl failed.
    """
    job, procs = start_crawl(spider, start_url, source_name, **more)
    return wait_crawl(job, procs, on_progress)


def start_crawl(
    spider: str,
    start_url: str,
    source_name: str,
    licence_note: str = "",
    options: dict[str, str] | None = None,
    resume: int | None = None,
    processes: int = 1,
    scrapy_settings: dict[str, str] | None = None,
) -> tuple[CrawlJob, list[subprocess.Popen[bytes]]]:
    """Create (or reopen) the job and start its crawler processes without waiting for them.

    Args:
        spider: "site" (start_url is where it starts) or "sitemap" (start_url is the sitemap).
        options: more spider arguments (depth, allow, deny, extract, images, domains).
        resume: id of an interrupted job to continue; its job directory is reused.
        processes: more than 1 runs a distributed crawl: the processes share one frontier and one
            de-duplication set in Redis (scrapy-redis) and record into one job.
        scrapy_settings: extra ``-s`` settings.

    Raises:
        CrawlError: unknown spider, unknown job to resume, or a distributed crawl asked to resume.
    """
    if spider not in SPIDERS:
        raise CrawlError(0, f"unknown spider {spider!r}; choose one of {', '.join(SPIDERS)}")
    if processes < 1 or (processes > 1 and resume is not None):
        raise CrawlError(resume or 0, "a distributed crawl (processes > 1) keeps its frontier in Redis, not resumed")
    if resume is not None:
        job = CrawlJob.objects.filter(pk=resume).select_related("source").first()
        if job is None:
            raise CrawlError(resume, "no such crawl job to resume")
        services.reopen_crawl_job(job.pk)
        _drop_unclean_queue(job_dir(job.pk))
    else:
        source = services.get_or_create_source(source_name, start_url, licence_note)
        job = services.start_crawl_job(source, spider, [start_url])
        # A new job never inherits files: a job directory with this id is left from another database.
        shutil.rmtree(job_dir(job.pk), ignore_errors=True)
        for n in range(processes):
            log_file(job.pk, n).unlink(missing_ok=True)
    arg = "sitemap_url" if spider == "sitemap" else "start_url"
    cmd = [sys.executable, "-m", "scrapy", "crawl", spider, "-a", f"{arg}={start_url}", "-a", f"job_id={job.pk}"]
    for key, value in (options or {}).items():
        cmd += ["-a", f"{key}={value}"]
    extra = {
        "FSML_RESUME": "1" if resume is not None else "0",
        "IMAGES_STORE": str(Path(settings.FSML_HOME) / "files" / "images"),
    }
    extra.update(distributed_settings(job.pk) if processes > 1 else {"JOBDIR": str(job_dir(job.pk))})
    extra.update(scrapy_settings or {})
    for key, value in extra.items():
        cmd += ["-s", f"{key}={value}"]
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    procs = []
    for n in range(processes):
        log_path = log_file(job.pk, n)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as log:
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    return job, procs


def distributed_settings(job_id: int) -> dict[str, str]:
    """scrapy-redis scheduler and de-duplication, namespaced by job, persisted until every process ends."""
    return {
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": "True",  # the first process to finish must not delete the shared frontier
        "SCHEDULER_QUEUE_KEY": f"fsml:crawl:{job_id}:requests",
        "SCHEDULER_DUPEFILTER_KEY": f"fsml:crawl:{job_id}:dupefilter",
        "REDIS_URL": settings.CRAWL_REDIS_URL,
        "FSML_SHARED_JOB": "1",
        "FSML_STATS_INTERVAL": "0",
    }


def log_file(job_id: int, process: int = 0) -> Path:
    return job_dir(job_id).with_name(f"job-{job_id}" + (f"-{process}" if process else "") + ".log")


def wait_crawl(
    job: CrawlJob, procs: list[subprocess.Popen[bytes]], on_progress: Callable[[int], None] | None = None
) -> CrawlJob:
    """Wait for the job's processes, then check and close the job."""
    while any(p.poll() is None for p in procs):
        time.sleep(0.5)
        if on_progress:
            on_progress(CrawlJob.objects.values_list("items_stored", flat=True).get(pk=job.pk))
    if len(procs) > 1:
        client = redis.Redis.from_url(settings.CRAWL_REDIS_URL)
        keys = list(client.scan_iter(f"fsml:crawl:{job.pk}:*"))
        if keys:
            client.delete(*keys)
        services.close_crawl_job(job.pk, CrawlJob.Status.FINISHED, only_from=CrawlJob.Status.RUNNING)
    job.refresh_from_db()
    if on_progress:
        on_progress(job.items_stored)
    codes = [p.returncode for p in procs]
    if job.status == CrawlJob.Status.RUNNING or (any(codes) and job.status == CrawlJob.Status.FINISHED):
        # A process that died (or could not write) before recording its end leaves the job running.
        why = f"scrapy exited with {codes}" if any(codes) else "the crawl ended without recording its end"
        services.close_crawl_job(job.pk, CrawlJob.Status.FAILED, reason=why)
    job.refresh_from_db()
    if job.status != CrawlJob.Status.FINISHED:
        reason = job.stats.get("reason") or f"scrapy exited with {codes}"
        if not any(codes):  # the crawl ran and recorded why it failed: that is the message
            raise CrawlError(job.pk, f"failed: {reason} (log {log_file(job.pk)})")
        tail = "\n".join(log_file(job.pk).read_text(errors="replace").strip().splitlines()[-8:])
        raise CrawlError(job.pk, f"failed: {reason}; log {log_file(job.pk)}:\n{tail}")
    return job


def _drop_unclean_queue(path: Path) -> None:
    """After a SIGKILL the on-disk request queue has no index (Scrapy writes it at a clean stop); drop it.

    Nothing is lost: a resumed job re-crawls listing pages and skips item pages it already stored (with no
    ``extract`` pattern to tell them apart, a site crawl re-crawls every page).
    """
    if path.is_dir() and not (path / "spider.state").exists():
        shutil.rmtree(path / "requests.queue", ignore_errors=True)
