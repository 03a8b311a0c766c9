"""REST endpoints of the team, progress and guideline versions: the same rules as the pages.

- ``GET /api/projects/ID/progress/``: the calling annotator's progress (any member may ask).
- ``GET|POST /api/projects/ID/members/``: members with throughput and agreement; create an account (managers).
- ``PATCH /api/projects/ID/members/MID/``: ``{"is_active": false}`` deactivates, ``true`` brings back.
- ``POST /api/projects/ID/members/MID/invite/``: a new invitation link for a member who never set a password.
- ``GET|POST /api/projects/ID/guidelines/``: versions with agreement under each; a manager's edit.
- ``POST /api/projects/ID/questions/QID/guidelines/``: add an answered question to the guidelines.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import services
from annotation.api import JSON_LIST, project_for
from annotation.services import Role
from annotation.services.guidelines import MAX_NOTE, agreement_by_version, history
from annotation.team import services as team
from datastore.models import ProjectMember

JSON = OpenApiTypes.OBJECT


def invitation_payload(request: Request, invitation: team.Invitation) -> dict[str, Any]:
    member = invitation.member
    return {
        "id": member.pk,
        "username": member.user.username,
        "role": member.role,
        "invite_url": request.build_absolute_uri(invitation.path),
        "emailed": invitation.emailed,
    }


class Progress(APIView):
    @extend_schema(responses=JSON, description="done_by_me, done_today, left_for_me, project_total, project_done")
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        return Response(team.progress(project, request.user))


@extend_schema_field({"type": "string", "pattern": r"^[\w.@+-]+(?!\n)$", "maxLength": 150})
class UsernameField(serializers.CharField):
    """A new account's name, documented as Django's username characters (the account service refuses others)."""


class AccountIn(serializers.Serializer):
    username = UsernameField(max_length=150)
    email = serializers.EmailField(required=False, default="", allow_blank=True)
    role = serializers.ChoiceField(choices=[role.value for role in team.INVITABLE])


class Members(APIView):
    @extend_schema(responses=JSON_LIST)
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, Role.MANAGER)
        return Response(team.member_stats(project))

    @extend_schema(request=AccountIn, responses={201: JSON}, description="Create an account and its invitation link.")
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, Role.MANAGER)
        body = AccountIn(data=request.data)
        body.is_valid(raise_exception=True)
        invitation = team.create_account(project, request.user, **body.validated_data)
        return Response(invitation_payload(request, invitation), status=201)


class MemberIn(serializers.Serializer):
    is_active = serializers.BooleanField()


class Member(APIView):
    @extend_schema(request=MemberIn, responses=JSON)
    def patch(self, request: Request, project_id: int, member_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, Role.MANAGER)
        member = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=member_id)
        body = MemberIn(data=request.data)
        body.is_valid(raise_exception=True)
        member = team.set_active(project, request.user, member, body.validated_data["is_active"])
        return Response({"id": member.pk, "username": member.user.username, "is_active": member.is_active})


class Invite(APIView):
    @extend_schema(request=None, responses=JSON)
    def post(self, request: Request, project_id: int, member_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, Role.MANAGER)
        member = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, pk=member_id)
        return Response(invitation_payload(request, team.reinvite(project, request.user, member)))


class GuidelinesIn(serializers.Serializer):
    guidelines = serializers.CharField(allow_blank=True, trim_whitespace=False)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=MAX_NOTE)


class Guidelines(APIView):
    @extend_schema(responses=JSON)
    def get(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, Role.MANAGER, Role.REVIEWER)
        services.current_guideline_version(project)
        return Response({"agreement": agreement_by_version(project), "versions": history(project)})

    @extend_schema(
        request=GuidelinesIn,
        responses={200: JSON, 201: JSON},
        description="201 when the text changed (a new guideline version), 200 when it was the same.",
    )
    def post(self, request: Request, project_id: int) -> Response:
        project = project_for(request.user, project_id)
        services.require_role(project, request.user, Role.MANAGER)
        body = GuidelinesIn(data=request.data)
        body.is_valid(raise_exception=True)
        version = services.edit_guidelines(
            project, request.user, body.validated_data["guidelines"], body.validated_data["note"]
        )
        current = services.current_guideline_version(project)
        return Response({"version": current.number, "created": version is not None}, status=201 if version else 200)


class QuestionToGuidelines(APIView):
    @extend_schema(request=None, responses=JSON)
    def post(self, request: Request, project_id: int, question_id: int) -> Response:
        project = project_for(request.user, project_id)
        question = team.add_to_guidelines(project, request.user, question_id)
        version = question.added_to_guidelines
        return Response({"id": question.pk, "guideline_version": version.number if version else None})
