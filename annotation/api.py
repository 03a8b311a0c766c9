"""REST API of the annotation app: the same endpoints serve the browser and scripts."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import services
from datastore.models import Project, Task


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = ["id", "name", "task_type", "labels", "guidelines", "overlap"]


class TaskSerializer(serializers.ModelSerializer):
    item = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = ["id", "project", "status", "locked_until", "item"]

    def get_item(self, task: Task) -> dict[str, Any]:
        item = task.item
        return {
            "id": item.pk,
            "title": item.title,
            "text": item.text,
            "url": item.canonical_url,
            "metadata": item.metadata,
        }


class AnnotationInSerializer(serializers.Serializer):
    value = serializers.JSONField()
    lead_time = serializers.FloatField(required=False, default=0.0, min_value=0.0)


def visible_projects(user: Any) -> Any:
    projects = Project.objects.order_by("id")
    return projects if user.is_staff else projects.filter(members=user)


class ProjectList(APIView):
    def get(self, request: Request) -> Response:
        return Response(ProjectSerializer(visible_projects(request.user), many=True).data)


class NextTask(APIView):
    def post(self, request: Request, project_id: int) -> Response:
        project = get_object_or_404(visible_projects(request.user), pk=project_id)
        task = services.next_task(project, request.user)
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(TaskSerializer(task).data)


class SubmitAnnotation(APIView):
    def post(self, request: Request, task_id: int) -> Response:
        task = get_object_or_404(Task.objects.filter(project__in=visible_projects(request.user)), pk=task_id)
        body = AnnotationInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            annotation = services.submit(
                task.pk, request.user, body.validated_data["value"], body.validated_data["lead_time"]
            )
        except services.AnnotationError as exc:
            return Response({"detail": exc.reason, "task": exc.task_id}, status=exc.status)
        return Response(
            {"id": annotation.pk, "task": task.pk, "value": annotation.value}, status=status.HTTP_201_CREATED
        )
