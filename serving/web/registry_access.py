"""Who may read what of the model registry (``registry_api``, ``registry_pages``).

- What a caller needs to name a model in a job (``NAME``, ``NAME:VERSION``, ``NAME@ALIAS``): every model's name,
  task, version numbers and aliases, from ``GET /api/models/``, to every signed-in user and service. Any service
  may submit jobs to any model, so none of it is hidden from one.
- A version's record (the dataset it was trained on and its sources, the archive's SHA-256, its test metrics) and
  the moves of the aliases (who moved them and why): ``GET /api/models/NAME/`` and the pages ``/models/`` and
  ``/models/NAME/``, to staff, and to the members of the project whose dataset version a model version was
  trained on, for those versions only (as evaluations are shown). Others get 403.
"""

from __future__ import annotations

from typing import Any

from datastore.models import ModelVersion
from datastore.services import registry

RECORD_IS_RESTRICTED = (
    "model {name!r}: its versions' records are for staff and the members of the projects it was trained on; "
    "GET /api/models/ lists the models and aliases a service may call"
)


def readable_versions(user: Any, name: str | None = None) -> set[tuple[str, int]]:
    """(name, version) of the model versions whose record ``user`` may read (of model ``name`` only, if given)."""
    versions = ModelVersion.objects.all()
    if name is not None:
        versions = versions.filter(name=name)
    if not user.is_staff:
        versions = versions.filter(dataset_version__project__memberships__user=user)
    return {(n, v) for n, v in versions.values_list("name", "version").distinct()}


def model_detail_for(user: Any, name: str) -> dict[str, Any]:
    """``registry.model_detail`` of the versions ``user`` may read: their aliases and the moves between them.

    Raises:
        RegistryError: no model of that name (404); none of its versions is readable by ``user`` (403).
    """
    detail = registry.model_detail(name)
    if user.is_staff:
        return detail
    shown = {version for _, version in readable_versions(user, name)}
    if not shown:
        raise registry.RegistryError(RECORD_IS_RESTRICTED.format(name=name), status=403)
    return detail | {
        "aliases": {alias: version for alias, version in detail["aliases"].items() if version in shown},
        "versions": [v for v in detail["versions"] if v["version"] in shown],
        "moves": [m for m in detail["moves"] if m["to"] in shown and m["from"] in shown | {None}],
    }


def models_summary_for(user: Any) -> list[dict[str, Any]]:
    """``registry.models_summary`` of the models with a version ``user`` may read, of those versions only."""
    summary = registry.models_summary()
    if user.is_staff:
        return summary
    shown = readable_versions(user)
    rows = []
    for model in summary:
        versions = [v for v in model["versions"] if (model["name"], v) in shown]
        if versions:
            aliases = {alias: v for alias, v in model["aliases"].items() if v in versions}
            rows.append(model | {"versions": versions, "latest": versions[-1], "aliases": aliases})
    return rows
