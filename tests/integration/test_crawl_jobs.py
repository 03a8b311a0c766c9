"""Crawl jobs as the crawler records them, shown to staff on the crawl page and in the crawl API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from datastore import services


def test_crawl_jobs_are_listed_in_the_web_ui_and_api(db) -> None:
    source = services.get_or_create_source("shown", "http://example.test/")
    job = services.start_crawl_job(source, "site", ["http://example.test/"])
    services.finish_crawl_job(
        job.pk, failed=False, stats={"response_received_count": 42, "failures": {"http_404": ["http://example.test/x"]}}
    )
    client = Client()
    assert client.get("/crawls/").status_code == 302  # login first
    staff = get_user_model().objects.create(username="ops", is_staff=True)
    client.force_login(staff)
    page = client.get("/crawls/").content.decode()
    assert "shown" in page and "finished" in page and "42" in page and "http_404: 1" in page
    api = client.get("/api/crawls/").json()
    assert api[0]["pages_crawled"] == 42 and api[0]["failures"] == {"http_404": 1}
