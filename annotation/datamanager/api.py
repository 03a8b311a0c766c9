"""REST API of the data manager: a project's tasks filtered and paged, one task's history, bulk actions."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.datamanager import bulk
from annotation.datamanager.history import task_detail
from annotation.datamanager.services import (
    MAX_PAGE_SIZE,
    ORDERS,
    PAGE_SIZE,
    STATUSES,
    TaskFilter,
    list_tasks,
    readable_project,
)
from annotation.services import AnnotationError, project_for_user

JSON = OpenApiTypes.OBJECT
YES_NO = ["yes", "no"]
FILTER_PARAMETERS = [
    OpenApiParameter("status", str, enum=list(STATUSES), description="Derived status of the task."),
    OpenApiParameter("label", str, description="The final label or any annotation has this label."),
    OpenApiParameter("annotator", str, description="A username: tasks this person annotated."),
    OpenApiParameter("disagreement", str, enum=YES_NO, description="yes: two or more annotations, not all equal."),
    OpenApiParameter("has_question", str, enum=YES_NO, description="A question was asked about the task (or not)."),
    OpenApiParameter("source", str, description="The item's source, by name or id."),
    OpenApiParameter(
        "q",
        str,
        description="Case-insensitive substring of the item's text (of an image's file name in image projects).",
    ),
    OpenApiParameter("order", str, enum=list(ORDERS), description="Sort; a leading - reverses it."),
]
PAGE_PARAMETERS = [
    OpenApiParameter(
        "page", {"type": "integer", "minimum": 1}, description="1-based page number (past the end: the last page)."
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
        description=f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {PAGE_SIZE}).",
    ),
]


class ProjectTasks(APIView):
    @extend_schema(
        operation_id="project_tasks_list",
        parameters=FILTER_PARAMETERS + PAGE_PARAMETERS,
        responses=JSON,
        description=(
            "A page of the project's tasks for its managers and reviewers: ``count``, ``page``, ``pages``, "
            "``page_size`` and ``rows``, each with its status, annotations and annotators, agreement, the model's "
            "suggestion and confidence, a question flag and its item (text excerpt, title, URL, image file name, "
            "content hash, source)."
        ),
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = readable_project(project_id, request.user)
        flt = TaskFilter.from_query(request.query_params)
        page = list_tasks(project, flt, request.query_params.get("page"), request.query_params.get("page_size"))
        return Response(page.as_dict() | {"filter": flt.as_query()})


class TaskDetail(APIView):
    @extend_schema(
        operation_id="task_detail",
        responses=JSON,
        description="One task with its item and history: annotations, assignments, adjudication, relabel "
        "requests and questions.",
    )
    def get(self, request: Request, task_id: int) -> Response:
        return Response(task_detail(task_id, request.user))


class BulkIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(bulk.ACTIONS))
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=bulk.MAX_IDS, help_text="Task ids."
    )
    filter = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Instead of ids: every task these list filters match (the list's query parameters).",
    )
    reason = serializers.CharField(required=False, allow_blank=True, help_text="send_back: why (1-500 characters).")
    value = serializers.JSONField(required=False, help_text="adjudicate: the label (a name, or names).")
    override = serializers.BooleanField(required=False, default=False, help_text="adjudicate: replace final labels.")
    format = serializers.CharField(required=False, help_text="export: labelstudio, doccano, conll or csv.")


class BulkTasks(APIView):
    @extend_schema(
        operation_id="project_tasks_bulk",
        request=BulkIn,
        responses={200: JSON, (200, "application/octet-stream"): OpenApiTypes.BINARY},
        description=(
            "Run an action on task ids or on every task a filter matches, whole or not at all: ``send_back`` "
            "(managers, reviewers), ``adjudicate`` (managers, reviewers), ``remove_unlabelled`` (managers) and "
            "``export`` (managers, reviewers; the file is the response). A selected id that is not a task of the "
            "project, or a role that may not run the action, refuses the whole request: nothing is written."
        ),
    )
    def post(self, request: Request, project_id: int) -> HttpResponse | Response:
        project = project_for_user(project_id, request.user)
        if project is None:
            raise AnnotationError("no such project", 404)
        body = BulkIn(data=request.data)
        body.is_valid(raise_exception=True)
        data: dict[str, Any] = body.validated_data
        flt = TaskFilter.from_query(data["filter"]) if "filter" in data else None
        result = bulk.run(project, request.user, data["action"], data.get("ids"), flt, data)
        if result.payload is not None:
            response = HttpResponse(result.payload, content_type=result.content_type)
            response["Content-Disposition"] = f'attachment; filename="{result.file_name}"'
            return response
        return Response(result.as_dict())
