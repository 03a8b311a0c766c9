"""REST API of project jobs (``ProjectJob``: pre-annotation, large imports, adding items): a project's recent jobs
and one job, for the project's managers. Pre-annotation itself starts at ``POST /api/projects/ID/preannotate/``."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import preannotation, services
from annotation.api import JSON_LIST, project_for
from datastore.models import ProjectJob

MAX_JOBS = 100


class ProjectJobs(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=list(ProjectJob.Kind.values)),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_JOBS},
                description=f"At most {MAX_JOBS}; 20 when not given.",
            ),
        ],
        responses=JSON_LIST,
        description="The project's latest jobs, newest first, with status, progress (done/total) and error.",
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in ProjectJob.Kind.values:
            return Response({"detail": f"kind is one of {', '.join(ProjectJob.Kind.values)}"}, status=400)
        limit = request.query_params.get("limit", "20")
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_JOBS:
            return Response({"detail": f"limit is a whole number from 1 to {MAX_JOBS}"}, status=400)
        jobs = preannotation.recent_jobs(project, kind, int(limit))
        return Response([preannotation.job_payload(job) for job in jobs])


class ProjectJobDetail(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, job_id: int) -> Response:
        job = ProjectJob.objects.select_related("created_by").filter(pk=job_id).first()
        if job is None:
            raise Http404("no such job")
        project = project_for(request.user, job.project_id)  # 404 to those who do not see the project
        services.require_role(project, request.user, services.Role.MANAGER)
        return Response(preannotation.job_payload(job))
