"""Crawler errors, importable without Django (the CLI reports them before Django is set up)."""

from __future__ import annotations


class CrawlError(Exception):
    def __init__(self, job_id: int, reason: str) -> None:
        super().__init__(f"crawl job {job_id}: {reason}")
        self.job_id, self.reason = job_id, reason
