"""Crawl jobs in the web UI and the REST API: status, pages, errors, items stored, rate."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
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
        return {reason: len(urls) for reason, urls in job.stats.get("failures", {}).items()}


def recent_jobs() -> Any:
    return CrawlJob.objects.select_related("source").order_by("-started_at")[:200]


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = CrawlJobSerializer(recent_jobs(), many=True).data
    return render(request, "crawler/jobs.html", {"jobs": jobs})


class CrawlJobList(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses=CrawlJobSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(CrawlJobSerializer(recent_jobs(), many=True).data)
