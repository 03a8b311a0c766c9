"""Team, question board, guideline versions and progress: pages, API, and the set-password (invitation) link."""

from __future__ import annotations

from django.urls import path

from annotation.team import api, views

urlpatterns = [
    path("manage/<int:project_id>/team/", views.team_view, name="team"),
    path("manage/<int:project_id>/team/<int:member_id>/active/", views.member_active, name="team-active"),
    path("manage/<int:project_id>/team/<int:member_id>/invite/", views.member_invite, name="team-invite"),
    path("manage/<int:project_id>/questions/", views.questions_view, name="questions"),
    path("manage/<int:project_id>/questions/<int:question_id>/answer/", views.answer_view, name="question-answer"),
    path(
        "manage/<int:project_id>/questions/<int:question_id>/guidelines/",
        views.add_to_guidelines_view,
        name="question-to-guidelines",
    ),
    path("review/<int:project_id>/guidelines/", views.guidelines_view, name="guidelines"),
    path("accounts/reset/<uidb64>/<token>/", views.SetPassword.as_view(), name="password_reset_confirm"),
    path("accounts/reset/done/", views.PasswordSet.as_view(), name="password_reset_complete"),
    path("api/projects/<int:project_id>/progress/", api.Progress.as_view(), name="api-progress"),
    path("api/projects/<int:project_id>/members/", api.Members.as_view(), name="api-members"),
    path("api/projects/<int:project_id>/members/<int:member_id>/", api.Member.as_view(), name="api-member"),
    path("api/projects/<int:project_id>/members/<int:member_id>/invite/", api.Invite.as_view(), name="api-invite"),
    path("api/projects/<int:project_id>/guidelines/", api.Guidelines.as_view(), name="api-guidelines"),
    path(
        "api/projects/<int:project_id>/questions/<int:question_id>/guidelines/",
        api.QuestionToGuidelines.as_view(),
        name="api-question-to-guidelines",
    ),
]
