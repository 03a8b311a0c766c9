"""URLs of the one Django site: admin, the annotation app and its API, the job API, health."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("serving.urls")),
    path("", include("crawler.urls")),
    path("", include("annotation.urls")),
]
