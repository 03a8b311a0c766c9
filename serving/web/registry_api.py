"""The model registry over REST: read models, versions and alias moves; staff move aliases (promote, roll back).

Who reads what: ``registry_access``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from datastore.models import AliasMove
from datastore.services import registry
from serving.web import registry_access


class RollbackIn(serializers.Serializer):
    reason = serializers.CharField(max_length=registry.MAX_REASON, required=False, allow_blank=True, default="")


class PromoteIn(RollbackIn):
    version = serializers.IntegerField(min_value=1)


class StaffMovesAliases(permissions.BasePermission):
    message = "moving a model alias needs a staff account"

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(request.user and request.user.is_staff)


def _moved(move: AliasMove) -> Response:
    return Response(
        {
            "name": move.name,
            "alias": move.alias,
            "action": move.action,
            "from": move.from_version.version if move.from_version else None,
            "to": move.to_version.version,
            "by": move.actor,
            "at": move.created_at.isoformat(),
        }
    )


class ModelSummary(serializers.Serializer):  # the schema of a row of registry.models_summary
    name = serializers.CharField()
    task = serializers.CharField()
    versions = serializers.ListField(child=serializers.IntegerField())
    latest = serializers.IntegerField()
    aliases = serializers.DictField(child=serializers.IntegerField())


ALIAS = OpenApiParameter("alias", {"type": "string", "pattern": registry.ALIAS_RE.pattern}, OpenApiParameter.PATH)


class ModelList(APIView):
    @extend_schema(operation_id="models_list", responses=ModelSummary(many=True))
    def get(self, request: Request) -> Response:
        return Response(registry.models_summary())  # what any caller may call: names, versions, aliases


class ModelDetail(APIView):
    @extend_schema(operation_id="models_detail", responses=dict)
    def get(self, request: Request, name: str) -> Response:
        # Staff, or a member of a project it was trained on (registry_access); RegistryError: fsml.api.exception_handler
        return Response(registry_access.model_detail_for(request.user, name))


class Promote(APIView):
    permission_classes = [permissions.IsAuthenticated, StaffMovesAliases]

    @extend_schema(operation_id="models_promote", request=PromoteIn, responses=dict, parameters=[ALIAS])
    def post(self, request: Request, name: str, alias: str) -> Response:
        body = PromoteIn(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return _moved(registry.promote(name, data["version"], alias, request.user, data["reason"]))


class Rollback(APIView):
    permission_classes = [permissions.IsAuthenticated, StaffMovesAliases]

    @extend_schema(operation_id="models_rollback", request=RollbackIn, responses=dict, parameters=[ALIAS])
    def post(self, request: Request, name: str, alias: str) -> Response:
        body = RollbackIn(data=request.data)
        body.is_valid(raise_exception=True)
        return _moved(registry.rollback(name, alias, request.user, body.validated_data["reason"]))
