"""Lineage pages of the evaluation app: an evaluation case's chain back to the crawled page, and a dataset
version's record (sources with licence notes, crawl jobs, counts, guideline versions, models trained on it).

Both show to staff and to the members of the dataset version's project, and are a 404 to everyone else, as the
evaluation pages are. The chains are built by ``datastore.lineage``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from annotation.services import project_for_user
from datastore.lineage import dataset_lineage, prediction_lineage
from datastore.models import DatasetVersion, Prediction
from evaluation.views import evaluation_for


@login_required
def case_lineage(request: HttpRequest, evaluation_id: int, prediction_id: int) -> HttpResponse:
    """An evaluation case's chain: the frozen label, the annotations behind it, the item, its crawl and source."""
    ev = evaluation_for(request.user, evaluation_id)
    prediction = get_object_or_404(Prediction, evaluation=ev, pk=prediction_id)
    chain = prediction_lineage(prediction, repo=str(settings.DVC_REPO_DIR))
    context = {
        "ev": ev,
        "case": prediction,
        "chain": chain,
        "back": reverse("evaluation-case", args=[ev.pk, prediction.pk]),
    }
    return render(request, "evaluation/case_lineage.html", context)


@login_required
def dataset_page(request: HttpRequest, name: str) -> HttpResponse:
    """A dataset version's record and provenance, with the model versions trained on it."""
    version = DatasetVersion.objects.filter(name=name).first()
    if version is None or project_for_user(version.project_id, request.user) is None:
        raise Http404("no such dataset version")
    chain = dataset_lineage(version, repo=str(settings.DVC_REPO_DIR))
    context = {
        "chain": chain,
        "trained_on": chain["provenance"],
        "trained_on_title": "Sources, licences and crawl jobs",
    }
    return render(request, "evaluation/dataset_lineage.html", context)
