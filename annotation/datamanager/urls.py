"""The data manager's pages and API."""

from __future__ import annotations

from django.urls import URLPattern, path

from annotation.datamanager import api, views

urlpatterns: list[URLPattern] = [
    path("data/<int:project_id>/", views.tasks, name="datamanager"),
    path("data/<int:project_id>/bulk/", views.bulk_action, name="datamanager-bulk"),
    path("data/<int:project_id>/tasks/<int:task_id>/", views.task, name="datamanager-task"),
    path("api/projects/<int:project_id>/tasks/", api.ProjectTasks.as_view(), name="api-project-tasks"),
    path("api/projects/<int:project_id>/tasks/bulk/", api.BulkTasks.as_view(), name="api-project-tasks-bulk"),
    path("api/tasks/<int:task_id>/", api.TaskDetail.as_view(), name="api-task"),
]
