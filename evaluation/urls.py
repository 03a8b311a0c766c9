from __future__ import annotations

from django.urls import path, re_path

from evaluation import lineage, views

urlpatterns = [
    path("evaluations/", views.leaderboard, name="evaluations"),
    path("evaluations/compare/", views.compare, name="evaluation-compare"),
    path("evaluations/<int:evaluation_id>/", views.evaluation, name="evaluation"),
    path("evaluations/<int:evaluation_id>/cases/<int:prediction_id>/", views.case, name="evaluation-case"),
    path(
        "evaluations/<int:evaluation_id>/cases/<int:prediction_id>/send-back/",
        views.send_back,
        name="evaluation-send-back",
    ),
    path(
        "evaluations/<int:evaluation_id>/cases/<int:prediction_id>/lineage/",
        lineage.case_lineage,
        name="evaluation-case-lineage",
    ),
    path("datasets/<str:name>/lineage/", lineage.dataset_page, name="dataset-lineage"),
    re_path(r"^evaluations/(?P<evaluation_id>\d+)/export\.(?P<fmt>json|csv)$", views.export, name="evaluation-export"),
    re_path(
        r"^evaluations/(?P<evaluation_id>\d+)/plots/(?P<kind>reliability|confusion)\.(?P<fmt>png|svg)$",
        views.plot,
        name="evaluation-plot",
    ),
]
