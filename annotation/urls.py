from __future__ import annotations

from django.urls import path

from annotation import api, views

urlpatterns = [
    path("", views.home, name="home"),
    path("annotate/<int:project_id>/", views.label, name="label"),
    path("api/projects/", api.ProjectList.as_view(), name="api-projects"),
    path("api/projects/<int:project_id>/next/", api.NextTask.as_view(), name="api-next-task"),
    path("api/tasks/<int:task_id>/annotations/", api.SubmitAnnotation.as_view(), name="api-submit"),
]
