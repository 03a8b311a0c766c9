"""Lineage of a served job: ``GET /api/jobs/ID/lineage/`` and the page ``/jobs/ID/lineage/``.

Only the job's submitter and staff see a job's lineage; to anyone else the job does not exist (404), as
``GET /api/jobs/ID/`` answers. The chain is built by ``datastore.lineage.job_lineage``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datastore.lineage import job_lineage
from datastore.models import InferenceJob


def visible_job(user: Any, job_id: Any) -> InferenceJob | None:
    """The job when ``user`` submitted it or is staff, else None."""
    jobs = InferenceJob.objects.filter(pk=job_id)
    if not user.is_staff:
        jobs = jobs.filter(submitted_by_id=user.pk)
    return jobs.first()


def lineage_of(job: InferenceJob) -> dict[str, Any]:
    return job_lineage(job, repo=str(settings.DVC_REPO_DIR))


LINEAGE_OUT = inline_serializer(
    "JobLineage",
    {
        "kind": serializers.CharField(),
        "job": serializers.DictField(help_text="id, model_ref, status, result, times, worker, submitted_by"),
        "input": serializers.DictField(help_text="kind, text (or image size), content_hash, stored"),
        "model": serializers.DictField(help_text="ref, archive_sha256, code_revision, training_config, metrics"),
        "dataset": serializers.DictField(allow_null=True, help_text="name, tag, dvc_md5, git_rev, project, counts"),
        "records": serializers.ListField(
            child=serializers.DictField(),
            help_text="per matching task: the label in the version, annotations (annotator, time, guideline "
            "version), adjudication, relabel requests, and the item with its crawl job and source",
        ),
        "trained_on": serializers.DictField(
            allow_null=True, help_text="when the input is not a stored item: sources, licence notes, counts"
        ),
    },
)


class JobLineage(APIView):
    """Where a job's prediction came from: model version, dataset version, and, when the input is a stored item,
    its label, annotations, crawled page, crawl job and source terms; otherwise what the model was trained on."""

    @extend_schema(
        operation_id="jobs_lineage",
        responses={200: LINEAGE_OUT, 404: OpenApiResponse(description="no such job (or not yours)")},
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = visible_job(request.user, job_id)
        if job is None:
            return Response({"detail": "no such job"}, status=status.HTTP_404_NOT_FOUND)
        return Response(lineage_of(job))


@login_required
def lineage_page(request: HttpRequest, job_id: str) -> HttpResponse:
    """The chain as sections: job, model, dataset, label and annotations, item and crawl."""
    job = visible_job(request.user, job_id)
    if job is None:
        raise Http404("no such job")
    chain = lineage_of(job)
    result = chain["job"].get("result")
    context = {
        "chain": chain,
        "trained_on": chain["trained_on"],
        "result_json": "" if result is None else json.dumps(result, ensure_ascii=False, sort_keys=True),
    }
    return render(request, "serving/lineage.html", context)
