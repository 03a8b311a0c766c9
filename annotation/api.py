"""REST API of the annotation app. The browser and scripts use the same endpoints; everything needs a
login (token or session with CSRF) and membership of the project, and denies by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import review, services
from datastore.models import Assignment, Item, Project, Question, Task


def visible_projects(user: Any) -> QuerySet[Project]:
    projects = Project.objects.order_by("id")
    return projects if user.is_staff else projects.filter(memberships__user=user)


def project_for(user: Any, project_id: int) -> Project:
    return get_object_or_404(visible_projects(user), pk=project_id)


def error(exc: services.AnnotationError) -> Response:
    return Response({"detail": exc.reason, "task": exc.task_id}, status=exc.status)


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
            "lock_seconds",
            "queue_order",
            "role",
            "answered_questions",
        ]

    def get_role(self, project: Project) -> str | None:
        return services.role_of(project, self.context["request"].user)

    def get_answered_questions(self, project: Project) -> list[dict[str, Any]]:
        answered = project.questions.exclude(answer="").order_by("-answered_at")[:50]
        return [{"id": q.pk, "question": q.text, "answer": q.answer} for q in answered]


def task_payload(assignment: Assignment) -> dict[str, Any]:
    task, item = assignment.task, assignment.task.item
    return {
        "id": task.pk,
        "project": task.project_id,
        "expires_at": assignment.expires_at,
        "prediction": task.prediction,
        "item": {
            "id": item.pk,
            "kind": item.kind,
            "title": item.title,
            "text": item.text,
            "url": item.canonical_url,
            "image": f"/api/items/{item.pk}/image/" if item.image else None,
            "metadata": item.metadata,
        },
    }


class ProjectList(APIView):
    def get(self, request: Request) -> Response:
        return Response(ProjectSerializer(visible_projects(request.user), many=True, context={"request": request}).data)


class ProjectDetail(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        return Response(ProjectSerializer(project, context={"request": request}).data)


class NextTask(APIView):
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        if services.role_of(project, request.user) != services.Role.ANNOTATOR and not request.user.is_staff:
            return Response({"detail": "only annotators of this project label its tasks"}, status=403)
        assignment = services.next_task(project, request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_payload(assignment))


class AnnotationIn(serializers.Serializer):
    value = serializers.JSONField()
    lead_time = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=86_400)


def task_for(user: Any, task_id: int) -> Task:
    return get_object_or_404(Task.objects.filter(project__in=visible_projects(user)), pk=task_id)


class SubmitAnnotation(APIView):
    def post(self, request: Request, task_id: int) -> Response:
        task = task_for(request.user, task_id)
        body = AnnotationIn(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            annotation = services.submit(
                task.pk, request.user, body.validated_data["value"], body.validated_data["lead_time"]
            )
        except services.AnnotationError as exc:
            return error(exc)
        return Response({"id": annotation.pk, "task": task.pk, "value": annotation.value}, status=201)


class SkipTask(APIView):
    def post(self, request: Request, task_id: int) -> Response:
        task = task_for(request.user, task_id)
        try:
            services.skip(task.pk, request.user, str(request.data.get("reason", "")))
        except services.AnnotationError as exc:
            return error(exc)
        return Response({"task": task.pk, "skipped": True})


class Undo(APIView):
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        try:
            assignment = services.undo(project, request.user)
        except services.AnnotationError as exc:
            return error(exc)
        return Response({"task": task_payload(assignment)})


class Disagreements(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        try:
            review.require_role(project, request.user, services.Role.REVIEWER, services.Role.MANAGER)
        except services.AnnotationError as exc:
            return error(exc)
        return Response(review.disagreements(project))


class Adjudicate(APIView):
    def post(self, request: Request, task_id: int) -> Response:
        task = task_for(request.user, task_id)
        try:
            task = review.adjudicate(task.pk, request.user, request.data.get("value"))
        except services.AnnotationError as exc:
            return error(exc)
        return Response({"task": task.pk, "final_value": task.final_value})


class Agreement(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        try:
            review.require_role(project, request.user, services.Role.REVIEWER, services.Role.MANAGER)
        except services.AnnotationError as exc:
            return error(exc)
        return Response(review.project_agreement(project))


class Dashboard(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        try:
            review.require_role(project, request.user, services.Role.REVIEWER, services.Role.MANAGER)
        except services.AnnotationError as exc:
            return error(exc)
        return Response(review.dashboard(project))


class Questions(APIView):
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        rows = project.questions.order_by("-created_at").values(
            "id", "task_id", "text", "answer", "asked_by__username", "created_at", "answered_at"
        )
        return Response(list(rows[:200]))

    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        try:
            question = review.ask(project, request.user, str(request.data.get("text", "")), request.data.get("task"))
        except services.AnnotationError as exc:
            return error(exc)
        return Response({"id": question.pk, "text": question.text}, status=201)


class AnswerQuestion(APIView):
    def post(self, request: Request, question_id: int) -> Response:
        question = get_object_or_404(
            Question.objects.filter(project__in=visible_projects(request.user)), pk=question_id
        )
        try:
            question = review.answer(question, request.user, str(request.data.get("answer", "")))
        except services.AnnotationError as exc:
            return error(exc)
        return Response({"id": question.pk, "answer": question.answer})


class ItemImage(APIView):
    def get(self, request: Request, item_id: int) -> FileResponse:
        visible = Task.objects.filter(project__in=visible_projects(request.user)).values("item_id")
        item = get_object_or_404(Item.objects.filter(Q(pk__in=visible)), pk=item_id)
        path = Path(item.image)
        if not item.image or not path.is_file():
            raise Http404("no image")
        return FileResponse(path.open("rb"))
