"""Job API for backend services: submit an inference job, read its status and result."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datastore.models import InferenceJob
from serving import services

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="A retried submit with the same key returns the first submit's job(s) instead of new ones.",
)


class JobSerializer(serializers.ModelSerializer):
    model = serializers.SerializerMethodField()

    class Meta:
        model = InferenceJob
        fields = [
            "id",
            "model",
            "status",
            "inputs",
            "result",
            "error",
            "attempts",
            "worker",
            "worker_pid",
            "idempotency_key",
            "batch_size",
            "queued_at",
            "started_at",
            "finished_at",
        ]

    def get_model(self, job: InferenceJob) -> str:
        return str(job.model_version)


class JobIn(serializers.Serializer):
    model = serializers.CharField(max_length=120)
    inputs = serializers.JSONField()


class JobList(APIView):
    @extend_schema(operation_id="jobs_list", responses=JobSerializer(many=True))
    def get(self, request: Request) -> Response:
        jobs = InferenceJob.objects.filter(submitted_by=request.user).select_related("model_version")
        jobs = jobs.order_by("-queued_at")[:100]
        return Response(JobSerializer(jobs, many=True).data)

    @extend_schema(
        request=JobIn,
        responses={202: JobSerializer, 200: JobSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        body = JobIn(data=request.data)
        body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key")
        job, created = services.submit_job(
            request.user, body.validated_data["model"], body.validated_data["inputs"], key
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK)


class JobBatchIn(serializers.Serializer):
    model = serializers.CharField(max_length=120)
    inputs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)


class JobBatchOut(serializers.Serializer):
    jobs = JobSerializer(many=True)


class JobBatch(APIView):
    """Submit many inputs for one model at once: one job each, all created or none."""

    @extend_schema(
        request=JobBatchIn,
        responses={202: JobBatchOut, 200: JobBatchOut},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        body = JobBatchIn(data=request.data)
        body.is_valid(raise_exception=True)
        jobs, created = services.submit_batch(
            request.user,
            body.validated_data["model"],
            body.validated_data["inputs"],
            request.headers.get("Idempotency-Key"),
        )
        return Response(
            {"jobs": JobSerializer(jobs, many=True).data},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )


class JobDetail(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = InferenceJob.objects.filter(submitted_by=request.user, pk=job_id).select_related("model_version")
        found = job.first()
        if found is None:
            return Response({"detail": "no such job"}, status=status.HTTP_404_NOT_FOUND)
        return Response(JobSerializer(found).data)
