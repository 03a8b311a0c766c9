"""Run a crawl as a real Scrapy process and follow its progress in the database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from datastore import services
from datastore.models import CrawlJob


class CrawlError(Exception):
    def __init__(self, job_id: int, reason: str) -> None:
        super().__init__(f"crawl job {job_id}: {reason}")
        self.job_id, self.reason = job_id, reason


def crawl(
    start_url: str,
    source_name: str,
    licence_note: str = "",
    depth: int = 0,
    on_progress: Callable[[int], None] | None = None,
    log_file: str | None = None,
) -> CrawlJob:
    """Crawl ``start_url`` with the site spider in a child ``scrapy crawl`` process.

    Returns the finished CrawlJob. Raises CrawlError when the process fails.
    """
    source = services.get_or_create_source(source_name, start_url, licence_note)
    job = services.start_crawl_job(source, "site", [start_url])
    cmd = [
        sys.executable,
        "-m",
        "scrapy",
        "crawl",
        "site",
        "-a",
        f"start_url={start_url}",
        "-a",
        f"job_id={job.pk}",
        "-a",
        f"depth={depth}",
    ]
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
    with tempfile.NamedTemporaryFile(
        "w+", prefix="fsml-crawl-", suffix=".log", delete=log_file is None
    ) as tmp:
        log_path = log_file or tmp.name
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            while proc.poll() is None:
                time.sleep(0.5)
                if on_progress:
                    on_progress(CrawlJob.objects.values_list("items_stored", flat=True).get(pk=job.pk))
        with open(log_path) as log:
            tail = "\n".join(log.read().strip().splitlines()[-8:])
    job.refresh_from_db()
    if proc.returncode != 0:
        CrawlJob.objects.filter(pk=job.pk).update(status=CrawlJob.Status.FAILED)
        raise CrawlError(job.pk, f"scrapy exited with {proc.returncode}: {tail}")
    if on_progress:
        on_progress(job.items_stored)
    return job
