from __future__ import annotations

from django.urls import path

from fsml.metrics_auth import prometheus_only
from serving.web import api, health, lineage, registry_api, registry_pages

urlpatterns = [
    path("api/jobs/", api.JobList.as_view(), name="api-jobs"),
    path("api/jobs/batch/", api.JobBatch.as_view(), name="api-jobs-batch"),
    path("api/jobs/sync/", api.JobSync.as_view(), name="api-jobs-sync"),
    path("api/jobs/<uuid:job_id>/", api.JobDetail.as_view(), name="api-job"),
    path("api/jobs/<uuid:job_id>/lineage/", lineage.JobLineage.as_view(), name="api-job-lineage"),
    path("jobs/<uuid:job_id>/lineage/", lineage.lineage_page, name="job-lineage"),
    path("api/callback-key/", api.CallbackKey.as_view(), name="api-callback-key"),
    path("api/models/", registry_api.ModelList.as_view(), name="api-models"),
    path("api/models/<str:name>/", registry_api.ModelDetail.as_view(), name="api-model"),
    path("api/models/<str:name>/aliases/<str:alias>/", registry_api.Promote.as_view(), name="api-model-promote"),
    path(
        "api/models/<str:name>/aliases/<str:alias>/rollback/",
        registry_api.Rollback.as_view(),
        name="api-model-rollback",
    ),
    path("models/", registry_pages.model_list, name="models"),
    path("models/<str:name>/", registry_pages.model_page, name="model-page"),
    path("healthz", health.live, name="healthz"),
    path("readyz", health.ready, name="readyz"),
    path("metrics", prometheus_only(health.metrics), name="metrics"),
]
