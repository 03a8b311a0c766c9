"""Job API for backend services: submit an inference job, read its status and result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.validators import URLValidator
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datastore.models import InferenceJob
from serving import callbacks, services

HTTP_URL = URLValidator(schemes=["http", "https"], message="callback_url must be an http or https URL")
MAX_SYNC_TIMEOUT = 30.0  # seconds a synchronous request may hold a web process
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
            "callback_url",
            "callback_status",
            "callback_attempts",
            "queued_at",
            "started_at",
            "finished_at",
        ]

    def get_model(self, job: InferenceJob) -> str:
        return str(job.model_version)

    def to_representation(self, job: InferenceJob) -> dict[str, Any]:
        """The declared fields, built directly: on the serving path this runs for every job, and DRF's per-field
        machinery cost more than the rest of the request (tests compare it with the generic output)."""
        out = {field: getattr(job, field) for field in self.Meta.fields if field not in _CONVERTED}
        out.update(
            id=str(job.pk),
            model=self.get_model(job),
            queued_at=_when(job.queued_at),
            started_at=_when(job.started_at),
            finished_at=_when(job.finished_at),
        )
        return {field: out[field] for field in self.Meta.fields}


_TIME = serializers.DateTimeField()


def _when(value: datetime | None) -> str | None:
    return None if value is None else _TIME.to_representation(value)


_CONVERTED = {"id", "model", "queued_at", "started_at", "finished_at"}


class JobIn(serializers.Serializer):
    model = serializers.CharField(max_length=120)
    inputs = serializers.JSONField()
    callback_url = serializers.URLField(
        max_length=500,
        required=False,
        allow_blank=True,
        validators=[HTTP_URL],
        help_text="POSTed the finished job (retried until 2xx).",
    )


class SyncJobIn(JobIn):
    timeout = serializers.FloatField(
        required=False, default=10.0, min_value=0.0, max_value=MAX_SYNC_TIMEOUT, help_text="Seconds to wait."
    )


class JobList(APIView):
    @extend_schema(operation_id="jobs_list", responses=JobSerializer(many=True))
    def get(self, request: Request) -> Response:
        jobs = InferenceJob.objects.filter(submitted_by_id=request.user.pk).select_related("model_version")
        jobs = jobs.order_by("-queued_at")[:100]
        return Response(JobSerializer(jobs, many=True).data)

    @extend_schema(
        request=JobIn,
        responses={202: JobSerializer, 200: JobSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        jobs, created, _ = _submit(request, JobIn)
        return Response(JobSerializer(jobs[0]).data, status=_submit_status(created))


def _submit(
    request: Request, shape: type[serializers.Serializer], batch: bool = False
) -> tuple[list[InferenceJob], bool, dict[str, Any]]:
    """Check the request's body against ``shape`` and submit its job (its jobs, with ``batch``): (jobs, whether
    they were created now rather than found by their idempotency key, the checked body)."""
    body = shape(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    jobs, created = services.submit_batch(
        request.user,
        data["model"],
        data["inputs"] if batch else [data["inputs"]],
        request.headers.get("Idempotency-Key"),
        single=not batch,
        callback_url=data.get("callback_url", ""),
    )
    return jobs, created, data


def _submit_status(created: bool) -> int:
    return status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK


class JobSync(APIView):
    """Submit one job and wait for its result up to ``timeout`` seconds (at most 30): 200 with the finished job,
    or 202 with the job as it is (poll ``/api/jobs/ID/``) when the time is up. For small, latency-bound calls."""

    @extend_schema(request=SyncJobIn, responses={200: JobSerializer, 202: JobSerializer}, parameters=[IDEMPOTENCY_KEY])
    def post(self, request: Request) -> Response:
        jobs, _, data = _submit(request, SyncJobIn)
        job = services.wait_for_job(jobs[0], data["timeout"])
        ended = job.status in (InferenceJob.Status.SUCCEEDED, InferenceJob.Status.FAILED)
        return Response(JobSerializer(job).data, status=status.HTTP_200_OK if ended else status.HTTP_202_ACCEPTED)


class JobBatchIn(serializers.Serializer):
    model = serializers.CharField(max_length=120)
    inputs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    callback_url = serializers.URLField(max_length=500, required=False, allow_blank=True, validators=[HTTP_URL])


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
        jobs, created, _ = _submit(request, JobBatchIn, batch=True)
        return Response({"jobs": JobSerializer(jobs, many=True).data}, status=_submit_status(created))


class JobDetail(APIView):
    @extend_schema(responses=JobSerializer)
    def get(self, request: Request, job_id: str) -> Response:
        job = InferenceJob.objects.filter(submitted_by_id=request.user.pk, pk=job_id).select_related("model_version")
        found = job.first()
        if found is None:
            return Response({"detail": "no such job"}, status=status.HTTP_404_NOT_FOUND)
        return Response(JobSerializer(found).data)


class CallbackKey(APIView):
    """The key this service's callbacks are signed with: ``X-Fsml-Signature: sha256=<hex HMAC-SHA256 of
    "<X-Fsml-Timestamp>." + body under this key>``. 404 when this deployment does not sign callbacks."""

    @extend_schema(responses={200: inline_serializer("CallbackKeyOut", {"key": serializers.CharField()})})
    def get(self, request: Request) -> Response:
        if not (key := callbacks.signing_key(request.user.pk)):
            return Response(
                {"detail": "callbacks are not signed here (FSML_CALLBACK_SECRET is not set)"},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response({"key": key})
