"""Job API for backend services: submit an inference job, read its status and result."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datastore.models import InferenceJob
from serving.jobs.callbacks import signing_key
from serving.jobs.states import ENDED, JOB_FIELDS, job_fields
from serving.web import submit

# A callback URL is checked where the submit is (checks.checked_callback_url): its form, then the deployment's
# allowed hosts; each refusal is a 400 naming the field.
CALLBACK_URL_HELP = "An http or https URL, POSTed the finished job (retried until 2xx)."
MAX_SYNC_TIMEOUT = 30.0  # seconds a synchronous request may hold a web process
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="A retried submit with the same key returns the first submit's job(s) instead of new ones.",
)


# What a submit can refuse besides the refusals every operation documents (fsml.schema).
SUBMIT_REFUSALS = {
    404: OpenApiResponse(description="No such model, version or alias."),
    413: OpenApiResponse(description="An input or the batch is larger than the service takes."),
    422: OpenApiResponse(description="The Idempotency-Key was already used for a different request."),
    501: OpenApiResponse(description="The model's task type is not served."),
}


class JobSerializer(serializers.ModelSerializer):
    """A job as the API shows it. The fields are declared for the schema; their values are built by
    ``serving.jobs.states.job_fields``, which callbacks send too."""

    model = serializers.SerializerMethodField()

    class Meta:
        model = InferenceJob
        fields = JOB_FIELDS

    def get_model(self, job: InferenceJob) -> str:
        return str(job.model_version)

    def to_representation(self, job: InferenceJob) -> dict[str, Any]:
        return job_fields(job)


class JobIn(serializers.Serializer):
    model = serializers.CharField(max_length=120)
    inputs = serializers.JSONField()
    callback_url = serializers.CharField(max_length=500, required=False, allow_blank=True, help_text=CALLBACK_URL_HELP)


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
        responses={202: JobSerializer, 200: JobSerializer, **SUBMIT_REFUSALS},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        _, submission = _submission(request, JobIn)
        job, created = submit.submit_job(**submission)
        return Response(JobSerializer(job).data, status=_submit_status(created))


def _submission(request: Request, shape: type[serializers.Serializer]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request's body checked against ``shape``, and what a submit of it is called with."""
    body = shape(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    return data, {
        "user": request.user,
        "model_ref": data["model"],
        "inputs": data["inputs"],
        "idempotency_key": request.headers.get("Idempotency-Key"),
        "callback_url": data.get("callback_url", ""),
    }


def _submit_status(created: bool) -> int:
    return status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK


class JobSync(APIView):
    """Submit one job and wait for its result up to ``timeout`` seconds (at most 30): 200 with the finished job,
    or 202 with the job as it is (poll ``/api/jobs/ID/``) when the time is up. For small, latency-bound calls."""

    @extend_schema(
        request=SyncJobIn,
        responses={200: JobSerializer, 202: JobSerializer, **SUBMIT_REFUSALS},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        data, submission = _submission(request, SyncJobIn)
        job = submit.wait_for_job(submit.submit_job(**submission)[0], data["timeout"])
        return Response(
            JobSerializer(job).data, status=status.HTTP_200_OK if job.status in ENDED else status.HTTP_202_ACCEPTED
        )


class JobBatchIn(serializers.Serializer):
    model = serializers.CharField(max_length=120)
    inputs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    callback_url = serializers.CharField(max_length=500, required=False, allow_blank=True, help_text=CALLBACK_URL_HELP)


class JobBatchOut(serializers.Serializer):
    jobs = JobSerializer(many=True)


class JobBatch(APIView):
    """Submit many inputs for one model at once: one job each, all created or none."""

    @extend_schema(
        request=JobBatchIn,
        responses={202: JobBatchOut, 200: JobBatchOut, **SUBMIT_REFUSALS},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        _, submission = _submission(request, JobBatchIn)
        jobs, created = submit.submit_batch(**submission)
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

    @extend_schema(
        responses={
            200: inline_serializer("CallbackKeyOut", {"key": serializers.CharField()}),
            404: OpenApiResponse(description="This deployment does not sign callbacks."),
        }
    )
    def get(self, request: Request) -> Response:
        if not (key := signing_key(request.user.pk)):
            return Response(
                {"detail": "callbacks are not signed here (FSML_CALLBACK_SECRET is not set)"},
                status=status.HTTP_404_NOT_FOUND,
            )
        return Response({"key": key})
