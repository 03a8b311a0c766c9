"""The ``fsml`` console script, run as a user runs it, against the test database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from crawler.samplesite import SampleSiteServer
from datastore.models import CrawlJob, Item

FSML = str(Path(sys.executable).with_name("fsml"))


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FSML, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())


def test_help_lists_every_stage() -> None:
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("crawl", "dataset", "train", "export", "evaluate", "package", "worker", "submit", "demo", "web"):
        assert command in proc.stdout


def test_crawl_command_stores_items(live_env) -> None:
    assert shutil.which(FSML)
    with SampleSiteServer(limit=40, seed=21) as site:
        proc = run("crawl", "site", site.url, "--source", "cli-sample", "--extract", "/post/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = CrawlJob.objects.get(source__name="cli-sample")
    assert f"crawl job {job.pk}: finished" in proc.stdout
    assert Item.objects.filter(source=job.source).count() == job.items_stored > 30


def test_domain_errors_end_with_a_message_not_a_traceback(live_env) -> None:
    proc = run("crawl", "nosuchspider", "http://127.0.0.1:9/")
    assert proc.returncode == 2
    assert "unknown spider 'nosuchspider'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    missing = run("dataset", "snapshot", "no-such-project", "--name", "x")
    assert missing.returncode == 2 and "no project named 'no-such-project'" in missing.stdout
