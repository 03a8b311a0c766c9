"""Routes of pre-annotation and project jobs: the manager page's forms and the job API."""

from __future__ import annotations

from django.urls import path

from annotation import preannotation_api, preannotation_views

urlpatterns = [
    path("manage/<int:project_id>/preannotate/", preannotation_views.start, name="manage-preannotate"),
    path("manage/<int:project_id>/queue-order/", preannotation_views.queue_order, name="manage-queue-order"),
    path("api/projects/<int:project_id>/jobs/", preannotation_api.ProjectJobs.as_view(), name="api-project-jobs"),
    path("api/project-jobs/<int:job_id>/", preannotation_api.ProjectJobDetail.as_view(), name="api-project-job"),
]
