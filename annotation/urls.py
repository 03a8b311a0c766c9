from __future__ import annotations

from django.urls import include, path

from annotation import api, views

urlpatterns = [
    path("", include("annotation.intake.urls")),
    path("", include("annotation.datamanager.urls")),
    path("", include("annotation.team.urls")),
    path("", include("annotation.preannotation_urls")),
    path("", views.home, name="home"),
    path("annotate/<int:project_id>/", views.label, name="label"),
    path("review/<int:project_id>/", views.review, name="review"),
    path("manage/new/", views.new_project, name="manage-new"),
    path("manage/<int:project_id>/", views.manage_project, name="manage-project"),
    path("manage/<int:project_id>/members/", views.add_member, name="manage-add-member"),
    path("manage/<int:project_id>/members/<int:member_id>/", views.member, name="manage-member"),
    path("manage/<int:project_id>/import/", views.import_tasks, name="manage-import"),
    path("api/projects/", api.ProjectList.as_view(), name="api-projects"),
    path("api/projects/<int:project_id>/", api.ProjectDetail.as_view(), name="api-project"),
    path("api/projects/<int:project_id>/next/", api.NextTask.as_view(), name="api-next-task"),
    path("api/projects/<int:project_id>/undo/", api.Undo.as_view(), name="api-undo"),
    path("api/projects/<int:project_id>/disagreements/", api.Disagreements.as_view(), name="api-disagreements"),
    path("api/projects/<int:project_id>/agreement/", api.Agreement.as_view(), name="api-agreement"),
    path("api/projects/<int:project_id>/dashboard/", api.Dashboard.as_view(), name="api-dashboard"),
    path("api/projects/<int:project_id>/questions/", api.Questions.as_view(), name="api-questions"),
    path("api/projects/<int:project_id>/preannotate/", api.Preannotate.as_view(), name="api-preannotate"),
    path("api/projects/<int:project_id>/import/", api.ImportTasks.as_view(), name="api-import"),
    path("api/projects/<int:project_id>/export/", api.ExportTasks.as_view(), name="api-export"),
    path("api/questions/<int:question_id>/answer/", api.AnswerQuestion.as_view(), name="api-answer"),
    path("api/tasks/<int:task_id>/annotations/", api.SubmitAnnotation.as_view(), name="api-submit"),
    path("api/tasks/<int:task_id>/skip/", api.SkipTask.as_view(), name="api-skip"),
    path("api/tasks/<int:task_id>/adjudicate/", api.Adjudicate.as_view(), name="api-adjudicate"),
    path("api/items/<int:item_id>/image/", api.ItemImage.as_view(), name="api-item-image"),
]
