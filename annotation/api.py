"""REST API of the annotation app. The browser and scripts use the same endpoints; everything needs a
login (token or session with CSRF) and membership of the project, and denies by default."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import formats, image_formats, image_imports, preannotation, services
from annotation.payloads import item_payload
from datastore.models import Assignment, Item, Project, Question, Task


def visible_projects(user: Any) -> QuerySet[Project]:
    """The projects the user may see, with their role (``member_role``) and answered questions fetched in
    the same two queries whatever the number of projects."""
    answered = Prefetch("questions", Question.objects.exclude(answer="").order_by("-answered_at"), "answered")
    projects = Project.objects.order_by("id").prefetch_related(answered)
    if user.is_staff:
        return projects
    return projects.filter(memberships__user=user, memberships__is_active=True).annotate(
        member_role=F("memberships__role"), member_user=F("memberships__user")
    )


def project_for(user: Any, project_id: int) -> Project:
    """The project with the user's role (one query); 404 when the user may not see it."""
    project = services.project_for_user(project_id, user)
    if project is None:
        raise Http404("no such project")
    return project


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    answered_questions = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "task_type",
            "labels",
            "guidelines",
            "overlap",
            "allow_overlapping_spans",
            "hotkeys",
            "lock_seconds",
            "queue_order",
            "role",
            "answered_questions",
        ]

    def get_role(self, project: Project) -> str | None:
        return services.role_of(project, self.context["request"].user)

    def get_answered_questions(self, project: Project) -> list[dict[str, Any]]:
        answered = getattr(project, "answered", None)
        if answered is None:  # a project fetched on its own
            answered = project.questions.exclude(answer="").order_by("-answered_at")
        answered = answered[:50]
        return [{"id": q.pk, "question": q.text, "answer": q.answer} for q in answered]


def task_payload(assignment: Assignment) -> dict[str, Any]:
    task, item = assignment.task, assignment.task.item
    return {
        "id": task.pk,
        "project": task.project_id,
        "expires_at": assignment.expires_at,
        "prediction": task.prediction,
        "item": item_payload(item) | {"metadata": item.metadata},
    }


class AnnotationIn(serializers.Serializer):
    value = serializers.JSONField(help_text="A label name, a list of names (multi-label) or spans.")
    lead_time = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=86_400)


class SkipIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class AdjudicateIn(serializers.Serializer):
    value = serializers.JSONField()
    override = serializers.BooleanField(required=False, default=False)


class QuestionIn(serializers.Serializer):
    text = serializers.CharField()
    task = serializers.IntegerField(required=False)


class AnswerIn(serializers.Serializer):
    answer = serializers.CharField()


JSON = OpenApiTypes.OBJECT


class AnyObject(serializers.Serializer):
    """An object the schema does not detail (a report's row)."""


JSON_LIST = AnyObject(many=True)
# What each export format is sent as (formats.export), and the zip of include_files.
EXPORT_MEDIA_TYPES = ("application/json", "application/jsonl", "text/plain", "text/csv", "application/zip")


class ProjectList(APIView):
    @extend_schema(operation_id="projects_list", responses=ProjectSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ProjectSerializer(visible_projects(request.user), many=True, context={"request": request}).data)


class ProjectDetail(APIView):
    @extend_schema(responses=ProjectSerializer)
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        return Response(ProjectSerializer(project, context={"request": request}).data)


MAX_BATCH = 100


class NextTask(APIView):
    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "count",
                {"type": "integer", "minimum": 1, "maximum": MAX_BATCH},
                description=f"Hold up to this many tasks at once (1 to {MAX_BATCH}; the grid view) and return "
                '{"tasks": [...]}, an empty list when nothing is left. Without it: one task, or 204.',
            )
        ],
        responses={200: JSON, 204: None},
        description="Hold and return the next task (or, with count, the next tasks).",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        if services.role_of(project, request.user) != services.Role.ANNOTATOR and not request.user.is_staff:
            return Response({"detail": "only annotators of this project label its tasks"}, status=403)
        if "count" in request.query_params:
            count = request.query_params["count"]
            if not count.isdigit() or not 1 <= int(count) <= MAX_BATCH:
                return Response({"detail": f"count is a whole number from 1 to {MAX_BATCH}"}, status=400)
            held = services.next_tasks(project, request.user, int(count))
            return Response({"tasks": [task_payload(assignment) for assignment in held]})
        assignment = services.next_task(project, request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_payload(assignment))


def task_for(user: Any, task_id: int) -> Task:
    return get_object_or_404(Task.objects.filter(project__in=visible_projects(user)), pk=task_id)


class SubmitAnnotation(APIView):
    @extend_schema(request=AnnotationIn, responses={201: JSON})
    def post(self, request: Request, task_id: int) -> Response:
        body = AnnotationIn(data=request.data)
        body.is_valid(raise_exception=True)
        # The service locks the task and checks the user's project in the same transaction.
        annotation = services.submit(
            task_id, request.user, body.validated_data["value"], body.validated_data["lead_time"]
        )
        return Response({"id": annotation.pk, "task": task_id, "value": annotation.value}, status=201)


class SkipTask(APIView):
    @extend_schema(request=SkipIn, responses=JSON)
    def post(self, request: Request, task_id: int) -> Response:
        body = SkipIn(data=request.data)
        body.is_valid(raise_exception=True)
        services.skip(task_id, request.user, body.validated_data["reason"])
        return Response({"task": task_id, "skipped": True})


class Undo(APIView):
    @extend_schema(
        request=None,
        responses=JSON,
        description='Take back your last answer in the project: {"task": the task, held for you again, "value": '
        "the answer you had given}.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        undone = services.undo(project, request.user)
        return Response({"task": task_payload(undone.assignment), "value": undone.value})


class ReviewerReport(APIView):
    """A read-only report for the project's reviewers and managers."""

    report: Any = None

    @extend_schema(responses=JSON)
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.REVIEWER, services.Role.MANAGER)
        return Response(type(self).report(project))


class Disagreements(ReviewerReport):
    report = staticmethod(services.disagreements)

    @extend_schema(responses=JSON_LIST)
    def get(self, request: Request, project_id: int) -> Response:
        return super().get(request, project_id)


class Agreement(ReviewerReport):
    report = staticmethod(services.project_agreement)


class Dashboard(ReviewerReport):
    report = staticmethod(services.dashboard)


class Adjudicate(APIView):
    @extend_schema(request=AdjudicateIn, responses=JSON)
    def post(self, request: Request, task_id: int) -> Response:
        task = task_for(request.user, task_id)
        body = AdjudicateIn(data=request.data)
        body.is_valid(raise_exception=True)
        task = services.adjudicate(task.pk, request.user, body.validated_data["value"], body.validated_data["override"])
        return Response({"task": task.pk, "final_value": task.final_value})


class Questions(APIView):
    @extend_schema(responses=JSON_LIST)
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        rows = project.questions.order_by("-created_at").values(
            "id", "task_id", "text", "answer", "asked_by__username", "created_at", "answered_at"
        )
        return Response(list(rows[:200]))

    @extend_schema(request=QuestionIn, responses={201: JSON})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        body = QuestionIn(data=request.data)
        body.is_valid(raise_exception=True)
        question = services.ask(project, request.user, body.validated_data["text"], body.validated_data.get("task"))
        return Response({"id": question.pk, "text": question.text}, status=201)


class AnswerQuestion(APIView):
    @extend_schema(request=AnswerIn, responses=JSON)
    def post(self, request: Request, question_id: int) -> Response:
        question = get_object_or_404(
            Question.objects.filter(project__in=visible_projects(request.user)), pk=question_id
        )
        body = AnswerIn(data=request.data)
        body.is_valid(raise_exception=True)
        question = services.answer(question, request.user, body.validated_data["answer"])
        return Response({"id": question.pk, "answer": question.answer})


class PreannotateIn(serializers.Serializer):
    model = serializers.CharField(help_text="NAME, NAME:VERSION or NAME@ALIAS of a registered model")
    only_open = serializers.BooleanField(required=False, default=True, help_text="Leave done tasks alone.")
    only_unsuggested = serializers.BooleanField(
        required=False, default=False, help_text="Leave tasks that have a suggestion already alone."
    )


class Preannotate(APIView):
    @extend_schema(responses=JSON_LIST, description="The registered models, each with why it does not fit the project.")
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)
        return Response([preannotation.candidate_payload(c) for c in preannotation.candidates(project)])

    @extend_schema(
        request=PreannotateIn,
        responses={202: JSON},
        description="Start pre-annotation as a background job (GET /api/project-jobs/ID/ follows it). A model "
        "whose task type or labels do not fit the project is refused with the reason and no job is made.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)  # before any work on the body
        body = PreannotateIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data  # RegistryError and AnnotationError: fsml.api.exception_handler
        job = preannotation.start_preannotation(
            project, request.user, data["model"], data["only_open"], data["only_unsuggested"]
        )
        return Response(preannotation.job_payload(job), status=status.HTTP_202_ACCEPTED)


MAX_IMPORT_BYTES = 20 * 1024 * 1024


class ImportTasks(APIView):
    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
        parameters=[
            OpenApiParameter("format", str, enum=[*formats.FORMATS, "imagefolder", "images"], required=True),
            OpenApiParameter("manifest", str, description="The CSV or JSON file inside a zip archive, if several."),
        ],
        responses={201: JSON, 202: JSON},
        description="A records file, image files (format=images), or one zip archive of labelled images: an "
        "ImageFolder tree (format=imagefolder), or a CSV (format=csv) or Label Studio JSON (format=labelstudio) "
        f"with the image files. More than {image_imports.LARGE_IMPORT} records or images: 202 with the background "
        "job (GET /api/project-jobs/ID/ follows it).",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)  # before any work on the body
        fmt = request.query_params.get("format", "")
        if fmt == "images":
            return self.images(request, project)
        upload = request.FILES.get("file")
        if upload is None:
            return Response({"detail": "send the file as multipart field 'file'"}, status=400)
        archive = image_imports.is_archive(upload)
        limit = image_formats.MAX_ARCHIVE_BYTES if archive else MAX_IMPORT_BYTES
        if upload.size > limit:
            return Response({"detail": f"the file is larger than {limit} bytes"}, status=413)
        if archive:
            result = image_imports.import_archive(
                project, request.user, fmt, upload, request.query_params.get("manifest", "")
            )
        elif fmt == "imagefolder":
            return Response({"detail": "format=imagefolder takes one zip archive of <class>/<file> folders"}, 400)
        else:
            result = image_imports.import_records_file(project, request.user, fmt, upload)
        return import_response(result)

    def images(self, request: Request, project: Project) -> Response:
        """``format=images``: one or more image files (repeated multipart field ``file``) become tasks."""
        uploads = request.FILES.getlist("file")
        total = sum(u.size for u in uploads)
        if total > MAX_IMPORT_BYTES:
            return Response({"detail": f"the files add up to more than {MAX_IMPORT_BYTES} bytes"}, status=413)
        created = services.import_images(project, request.user, [(u.name, u.read()) for u in uploads])
        return Response({"records": len(uploads), "tasks_created": created}, status=201)


def import_response(result: dict[str, Any]) -> Response:
    """201 with an import's counts, or 202 with the background job that runs a large one."""
    job = result.get("job")
    if job is None:
        return Response(result, status=201)
    body = {**preannotation.job_payload(job), "url": f"/api/project-jobs/{job.pk}/"}
    return Response(body, status=status.HTTP_202_ACCEPTED)


class ExportTasks(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(formats.FORMATS), required=True),
            OpenApiParameter("include_files", bool, description="A zip of the export file and the image files."),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.ANY,  # labelstudio: a JSON array of tasks
            **{(200, media_type): OpenApiTypes.BINARY for media_type in EXPORT_MEDIA_TYPES[1:]},
        },
        description="The project's tasks and answers as a file in the format asked for: labelstudio as "
        "application/json, doccano as application/jsonl, conll as text/plain, csv as text/csv; with include_files, "
        "a zip (application/zip) of that file and the image files.",
    )
    def get(self, request: Request, project_id: int) -> HttpResponse | FileResponse | Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.REVIEWER, services.Role.MANAGER)
        fmt = request.query_params.get("format", "")
        try:  # DRF's spellings of a boolean (true, 1, yes, on...); anything else is refused, not taken for false
            include_files = serializers.BooleanField().to_internal_value(request.query_params.get("include_files", "0"))
        except serializers.ValidationError:
            return Response({"detail": "include_files is true or false"}, status=400)
        rows = services.export_rows(project)
        try:
            if include_files:
                return self.archive(project, fmt, rows)
            payload, content_type = formats.export(fmt, project.task_type, rows)
        except formats.ImportFormatError as exc:
            return Response({"detail": str(exc)}, status=400)
        extension = formats.EXTENSIONS[fmt]
        response = HttpResponse(payload, content_type=content_type)
        # Quoted and escaped, or RFC 5987-encoded: no name can add a parameter or a header line.
        response["Content-Disposition"] = content_disposition_header(True, f"{project.name}.{extension}") or ""
        return response

    def archive(self, project: Project, fmt: str, rows: list[dict[str, Any]]) -> FileResponse:
        """The export file and every image in one zip, spooled to disk (a large project's images are big)."""
        spool = tempfile.TemporaryFile()  # noqa: SIM115  # FileResponse closes it once the body is sent
        try:
            formats.write_archive(spool, fmt, project.task_type, rows)
        except OSError as exc:
            spool.close()
            raise services.AnnotationError(f"an image cannot be read for the export: {exc}", 409) from None
        spool.seek(0)
        return FileResponse(spool, as_attachment=True, filename=f"{project.name}.zip", content_type="application/zip")


class ItemImage(APIView):
    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request: Request, item_id: int) -> FileResponse:
        visible = Task.objects.filter(project__in=visible_projects(request.user)).values("item_id")
        item = get_object_or_404(Item.objects.filter(Q(pk__in=visible)), pk=item_id)
        path = Path(item.image)
        if not item.image or not path.is_file():
            raise Http404("no image")
        return FileResponse(path.open("rb"))
