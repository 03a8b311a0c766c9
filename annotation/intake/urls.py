from __future__ import annotations

from django.urls import URLPattern, path

from annotation.intake import api, views

urlpatterns: list[URLPattern] = [
    path("manage/<int:project_id>/items/", views.add_items, name="manage-items"),
    path("api/projects/", api.Projects.as_view(), name="api-projects"),
    path("api/projects/<int:project_id>/items/", api.ProjectItems.as_view(), name="api-project-items"),
    path("api/projects/<int:project_id>/feeds/", api.ProjectFeeds.as_view(), name="api-project-feeds"),
    path("api/sources/", api.Sources.as_view(), name="api-sources"),
]
