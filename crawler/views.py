"""Crawl jobs in the web UI and the REST API: status, pages, errors, items stored, rate."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datastore.models import CrawlJob

FIELDS = [
    "id",
    "source",
    "spider",
    "status",
    "start_urls",
    "pages_crawled",
    "items_stored",
    "items_updated",
    "items_unchanged",
    "items_duplicate",
    "items_failed",
    "errors",
    "rate",
    "started_at",
    "finished_at",
]


class CrawlJobSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name")  # type: ignore[assignment]  # a field named like DRF's attribute
    rate = serializers.FloatField()
    failures = serializers.SerializerMethodField()

    class Meta:
        model = CrawlJob
        fields = [*FIELDS, "failures"]

    def get_failures(self, job: CrawlJob) -> dict[str, Any]:
        return dict(skipped(job.stats or {}))


def recent_jobs() -> Any:
    return CrawlJob.objects.select_related("source").order_by("-started_at")[:200]


REPR_NAMES = re.compile(r"""['"]([^'"]+)['"]""")  # the names inside a stored "dict_keys(['A', 'B'])"


def skipped(stats: dict[str, Any]) -> list[tuple[str, int | None]]:
    """Why pages yielded nothing, as (reason, pages), most pages first, from what a crawl stored: the spider's
    ``failures`` ({reason: sample URLs}) counted by its ``fsml/skipped/REASON`` totals; an older row may hold
    a list of reasons or their Python repr, which is read back as names (with no count), never shown as is."""
    failures = stats.get("failures") or {}
    if isinstance(failures, str):
        failures = {name: [] for name in REPR_NAMES.findall(failures)} or {failures: []}
    elif isinstance(failures, list | tuple):
        failures = {str(name): [] for name in failures}
    out = []
    for reason, samples in failures.items():
        total = stats.get(f"fsml/skipped/{reason}")
        if not isinstance(total, int):
            total = samples if isinstance(samples, int) else len(samples) if samples else None
        out.append((str(reason), total))
    return sorted(out, key=lambda pair: (-(pair[1] or 0), pair[0]))


def duration(job: CrawlJob) -> str:
    """How long a job ran (or has run so far): ``45 s``, ``12 min 5 s``, ``3 h 4 min``."""
    seconds = int(((job.finished_at or timezone.now()) - job.started_at).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


STAFF_ONLY = "the crawl monitor is for staff accounts, as /api/crawls/ is"


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    """The last 200 crawl jobs, newest first, with counts, rate, time taken and why pages were skipped.

    Staff only, as ``/api/crawls/``: crawls belong to no project, and their URLs and errors are the operators'.
    """
    if not request.user.is_staff:
        raise PermissionDenied(STAFF_ONLY)
    jobs = [
        {"job": job, "skipped": skipped(job.stats or {}), "duration": duration(job), "start_urls": job.start_urls}
        for job in recent_jobs()
    ]
    return render(request, "crawler/jobs.html", {"jobs": jobs})


class CrawlJobList(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=CrawlJobSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(CrawlJobSerializer(recent_jobs(), many=True).data)
