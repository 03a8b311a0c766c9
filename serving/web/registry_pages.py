"""The model registry as pages: ``/models/`` (every model name with its versions and aliases) and
``/models/NAME/`` (one model: its versions, where each alias points, every alias move, its evaluations).

Read-only; aliases move through the API or ``fsml model promote``. The data comes from
``datastore.services.registry``, as ``GET /api/models/NAME/`` shows it: to staff, and to a project's members the
versions trained on its data (``registry_access``, 403 to others); evaluations show only where the user may see
them (staff, or a member of the evaluated dataset version's project), as on the leaderboard.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from datastore.models import Evaluation, ModelVersion
from datastore.services import registry
from serving.web import registry_access

SHA_SHOWN = 12  # hex digits of an archive's SHA-256 on the pages; the full one is in the title and the API


def visible_evaluations(user: Any, name: str) -> list[Evaluation]:
    """The evaluations of model ``name`` the user may open, by version, dataset version and split."""
    evaluations = Evaluation.objects.filter(model_version__name=name)
    if not user.is_staff:
        evaluations = evaluations.filter(dataset_version__project__memberships__user=user).distinct()
    return list(
        evaluations.select_related("model_version", "dataset_version")
        .only("id", "split", "score", "macro_f1", "n", "model_version__version", "dataset_version__name")
        .order_by("-model_version__version", "dataset_version__name", "split")
    )


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    """Every model the user may read: its versions, aliases (and the version each names), its latest version's
    record."""
    models = registry_access.models_summary_for(request.user)
    wanted = {(m["name"], m["latest"]) for m in models}
    latest = {
        (v.name, v.version): v
        for v in ModelVersion.objects.filter(name__in=[name for name, _ in wanted]).only(
            "name", "version", "archive_sha256", "created_at", "metrics"
        )
        if (v.name, v.version) in wanted
    }
    rows = []
    for model in models:
        version = latest.get((model["name"], model["latest"]))
        test = (version.metrics or {}).get("test", {}) if version is not None else {}
        rows.append(
            model
            | {
                "aliases": sorted(model["aliases"].items()),
                "sha": version.archive_sha256 if version is not None else "",
                "created_at": version.created_at if version is not None else None,
                "accuracy": test.get("accuracy"),
                "macro_f1": test.get("macro_f1"),
            }
        )
    return render(request, "serving/models.html", {"models": rows, "sha_shown": SHA_SHOWN})


@login_required
def model_page(request: HttpRequest, name: str) -> HttpResponse:
    """One model: its versions with aliases, test metrics and archive hash, its alias moves, its evaluations."""
    try:
        detail = registry_access.model_detail_for(request.user, name)
    except registry.RegistryError as exc:
        if exc.status == 403:
            raise PermissionDenied(exc.reason) from None
        raise Http404(exc.reason) from None
    evaluations = visible_evaluations(request.user, name)
    by_version: dict[int, list[Evaluation]] = {}
    for ev in evaluations:
        by_version.setdefault(ev.model_version.version, []).append(ev)
    versions = [
        v | {"evaluations": by_version.get(v["version"], [])}
        for v in sorted(detail["versions"], key=lambda v: -v["version"])
    ]
    context = {
        "name": name,
        "aliases": sorted(detail["aliases"].items()),
        "versions": versions,
        "moves": detail["moves"],
        "sha_shown": SHA_SHOWN,
    }
    return render(request, "serving/model.html", context)
