"""Run a crawl as a real ``scrapy crawl`` process and follow its progress in the database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from datastore import services
from datastore.models import CrawlJob

SPIDERS = ("site", "sitemap")


class CrawlError(Exception):
    def __init__(self, job_id: int, reason: str) -> None:
        super().__init__(f"crawl job {job_id}: {reason}")
        self.job_id, self.reason = job_id, reason


def job_dir(job_id: int) -> Path:
    return Path(settings.FSML_HOME) / "crawls" / f"job-{job_id}"


def crawl(
    spider: str,
    start_url: str,
    source_name: str,
    licence_note: str = "",
    options: dict[str, str] | None = None,
    resume: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    log_file: str | None = None,
    scrapy_settings: dict[str, str] | None = None,
) -> CrawlJob:
    """Crawl with ``spider`` in a child ``scrapy crawl`` process and return the finished CrawlJob.

    Args:
        spider: "site" (start_url is where it starts) or "sitemap" (start_url is the sitemap).
        options: more spider arguments (depth, allow, deny, extract, images, domains).
        resume: id of an interrupted job to continue; its job directory is reused.
        scrapy_settings: extra ``-s`` settings.

    Raises:
        CrawlError: unknown spider, unknown job to resume, or the crawl failed.
    """
    if spider not in SPIDERS:
        raise CrawlError(0, f"unknown spider {spider!r}; choose one of {', '.join(SPIDERS)}")
    if resume is not None:
        job = CrawlJob.objects.filter(pk=resume).select_related("source").first()
        if job is None:
            raise CrawlError(resume, "no such crawl job to resume")
        CrawlJob.objects.filter(pk=job.pk).update(status=CrawlJob.Status.RUNNING, finished_at=None)
        _drop_unclean_queue(job_dir(job.pk))
    else:
        source = services.get_or_create_source(source_name, start_url, licence_note)
        job = services.start_crawl_job(source, spider, [start_url])
    arg = "sitemap_url" if spider == "sitemap" else "start_url"
    cmd = [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        spider,
        "-a",
        f"{arg}={start_url}",
        "-a",
        f"job_id={job.pk}",
    ]
    for key, value in (options or {}).items():
        cmd += ["-a", f"{key}={value}"]
    extra = {
        "JOBDIR": str(job_dir(job.pk)),
        "FSML_RESUME": "1" if resume is not None else "0",
        "IMAGES_STORE": str(Path(settings.FSML_HOME) / "files" / "images"),
        **(scrapy_settings or {}),
    }
    for key, value in extra.items():
        cmd += ["-s", f"{key}={value}"]
    log_path = Path(log_file) if log_file else job_dir(job.pk).with_suffix(".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    with log_path.open("a") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(0.5)
            if on_progress:
                on_progress(CrawlJob.objects.values_list("items_stored", flat=True).get(pk=job.pk))
    job.refresh_from_db()
    if on_progress:
        on_progress(job.items_stored)
    if proc.returncode != 0 or job.status != CrawlJob.Status.FINISHED:
        tail = "\n".join(log_path.read_text(errors="replace").strip().splitlines()[-8:])
        if job.status == CrawlJob.Status.RUNNING:
            CrawlJob.objects.filter(pk=job.pk).update(status=CrawlJob.Status.FAILED)
        raise CrawlError(job.pk, f"scrapy exited with {proc.returncode}, job {job.status}; log {log_path}:\n{tail}")
    return job


def _drop_unclean_queue(path: Path) -> None:
    """After a SIGKILL the on-disk request queue has no index (Scrapy writes it at a clean stop); drop it.

    Nothing is lost: a resumed job re-crawls listing pages and skips item pages it already stored.
    """
    if path.is_dir() and not (path / "spider.state").exists():
        shutil.rmtree(path / "requests.queue", ignore_errors=True)
