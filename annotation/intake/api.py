"""REST API of the intake: create a project (optionally from a crawl), add items by filter, follow sources, list
sources. Refusals are ``AnnotationError``s, which fsml.api.exception_handler turns into their status and reason."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import services
from annotation.api import JSON_LIST, ProjectList, ProjectSerializer, project_for
from annotation.intake import services as intake
from datastore.models import CrawlJob, Project, ProjectMember, Source

FILTER_HELP = (
    "Item filter: sources (names or ids), crawl_jobs (ids), url_pattern (regex searched in the URL), fetched_after, "
    "fetched_before (ISO dates, inclusive), languages, min_chars, max_chars, has_images, kind (text|image), "
    "not_in_project (name or id), sample (N), seed. See docs/annotation.md."
)
JSON = OpenApiTypes.OBJECT


@extend_schema_field(OpenApiTypes.OBJECT)
class FilterField(serializers.JSONField):
    """An item filter: a JSON object (``_filter_dict`` refuses anything else; ``intake.parse_filter`` its keys)."""


class ProjectIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    task_type = serializers.ChoiceField(choices=Project.TaskType.choices)
    labels = serializers.ListField(child=serializers.CharField(max_length=100), min_length=1)
    guidelines = serializers.CharField(required=False, allow_blank=True, default="")
    overlap = serializers.IntegerField(required=False, min_value=1, max_value=50, default=1)
    items = FilterField(required=False, help_text=FILTER_HELP + " Optional: the project's first tasks.")


class ItemsIn(serializers.Serializer):
    filter = FilterField(required=False, default=dict, help_text=FILTER_HELP)
    preview = serializers.BooleanField(required=False, default=False, help_text="Count only; write nothing.")
    background = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Run as a project job (default: when large)."
    )


class FeedIn(serializers.Serializer):
    # DRF's metaclass takes declared fields off the class, so this does not shadow Field.source at run time.
    source = serializers.CharField(help_text="Source name or id.")  # type: ignore[assignment]
    filter = FilterField(required=False, default=dict, help_text=FILTER_HELP)


def _filter_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise services.AnnotationError("the filter must be a JSON object")
    return value


class Projects(ProjectList):
    """``GET``: the projects the user sees. ``POST``: create one, its creator its manager, and optionally its
    first tasks from a crawl (``items``: a filter), all or nothing."""

    @extend_schema(operation_id="projects_create", request=ProjectIn, responses={201: JSON})
    def post(self, request: Request) -> Response:
        body = ProjectIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        items = data.pop("items", None)
        if items is None:
            project = services.start_project(request.user, **data)
            added: dict[str, Any] | None = None
        else:
            spec = intake.parse_filter(_filter_dict(items))
            project, result = intake.create_project_from_crawl(request.user, spec=spec, **data)
            added = result.to_dict()
        payload = ProjectSerializer(project, context={"request": request}).data
        return Response({**payload, "items": added}, status=201)


class ProjectItems(APIView):
    @extend_schema(
        request=ItemsIn,
        parameters=[OpenApiParameter("dry_run", bool, description="Count only; write nothing (as preview).")],
        responses={200: JSON, 201: JSON, 202: JSON},
        description="Add the filter's items to the project as tasks. Managers only.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)  # before any work on the body
        body = ItemsIn(data=request.data)
        body.is_valid(raise_exception=True)
        spec = intake.parse_filter(_filter_dict(body.validated_data["filter"]))
        dry = body.validated_data["preview"] or request.query_params.get("dry_run") in ("1", "true", "yes")
        if dry:
            counts = intake.preview(project, request.user, spec)
            return Response({**counts.to_dict(), "dry_run": True})
        result = intake.add_items(project, request.user, spec, background_job=body.validated_data["background"])
        return Response(result.to_dict(), status=202 if result.job is not None else 201)


def feed_row(feed: Any) -> dict[str, Any]:
    return {
        "id": feed.pk,
        "source": feed.source.name,
        "filter": feed.filters,
        "active": feed.active,
        "items_added": feed.items_added,
        "created_at": feed.created_at,
    }


class ProjectFeeds(APIView):
    """The sources a project follows: items later crawls store there become tasks as they arrive."""

    @extend_schema(responses=JSON_LIST)
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.REVIEWER, services.Role.MANAGER)
        return Response([feed_row(f) for f in project.feeds.select_related("source").order_by("source__name")])

    @extend_schema(request=FeedIn, responses={201: JSON})
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)
        body = FeedIn(data=request.data)
        body.is_valid(raise_exception=True)
        spec = intake.parse_filter(_filter_dict(body.validated_data["filter"]))
        feed = intake.follow(project, request.user, body.validated_data["source"], spec)
        return Response(feed_row(feed), status=201)

    @extend_schema(
        parameters=[OpenApiParameter("source", str, required=True, description="Source name or id.")],
        responses=JSON,
    )
    def delete(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, services.Role.MANAGER)
        source = request.query_params.get("source") or str(request.data.get("source") or "")
        if not source:
            raise services.AnnotationError("name the source to stop following (?source=NAME)")
        return Response(feed_row(intake.unfollow(project, request.user, source)))


class Sources(APIView):
    """Sources with their item counts and crawl jobs, to choose items from. For users who create projects and
    managers of any project."""

    @extend_schema(responses=JSON_LIST)
    def get(self, request: Request) -> Response:
        user: Any = request.user  # an authenticated user: the API's default permission
        manages = ProjectMember.objects.filter(user=user, role=services.Role.MANAGER).exists()
        if not (services.can_create_projects(user) or manages):
            raise services.AnnotationError("only project managers and users who create projects see sources", 403)
        sources = Source.objects.order_by("name").annotate(
            n_items=Count("items"),
            texts=Count("items", filter=Q(items__kind="text")),
            images=Count("items", filter=Q(items__kind="image")),
        )
        jobs: dict[int, list[dict[str, Any]]] = {}
        for job in CrawlJob.objects.order_by("-pk").values(
            "id", "source_id", "spider", "status", "items_stored", "started_at", "finished_at"
        ):
            row: dict[str, Any] = dict(job)
            jobs.setdefault(row.pop("source_id"), []).append(row)
        return Response(
            [
                {
                    "id": s.pk,
                    "name": s.name,
                    "base_url": s.base_url,
                    "licence_note": s.licence_note,
                    "items": s.n_items,
                    "kinds": {"text": s.texts, "image": s.images},
                    "crawl_jobs": jobs.get(s.pk, [])[:50],
                }
                for s in sources
            ]
        )
