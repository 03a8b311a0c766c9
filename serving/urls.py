from __future__ import annotations

from django.urls import path

from serving import api, health

urlpatterns = [
    path("api/jobs/", api.JobList.as_view(), name="api-jobs"),
    path("api/jobs/<uuid:job_id>/", api.JobDetail.as_view(), name="api-job"),
    path("healthz", health.live, name="healthz"),
    path("readyz", health.ready, name="readyz"),
]
