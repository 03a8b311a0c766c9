"""The model registry: immutable versions, movable aliases (stages), and a log of every move.

    NAME            the latest version          sentiment
    NAME:VERSION    one version                 sentiment:3
    NAME@ALIAS      whatever the alias names    sentiment@production

``promote`` points an alias at a version; ``rollback`` points it back at the version it named before the
current one was promoted. Both are one transaction with the alias row locked, and both leave an
``AliasMove`` saying who, when, from which version to which and why. Workers resolve ``NAME@ALIAS`` when
they take a batch of jobs, so a move reaches them without a restart (``serving.worker.batches.run_batch``).
"""

from __future__ import annotations

import getpass
import re
from typing import Any

from django.db import IntegrityError, transaction

from datastore.models import AliasMove, ModelAlias, ModelVersion

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
STAGES = ("staging", "production")
MAX_REASON = 500


class RegistryError(LookupError):
    """A registry request that cannot be carried out; ``status`` is its HTTP status, ``reason`` says why."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def _check_alias(alias: str) -> str:
    if not ALIAS_RE.fullmatch(alias or ""):
        raise RegistryError(
            f"alias {alias!r}: use 1 to 40 lower-case letters, digits, '-' or '_', starting with a letter "
            f"(the stages are {', '.join(STAGES)})"
        )
    return alias


def resolve(ref: str) -> ModelVersion:
    """The model version ``ref`` names (see the module docstring).

    Raises:
        RegistryError: a malformed reference (400), or one that names nothing (404).
    """
    name, at, alias = ref.partition("@")
    if at:
        _check_alias(alias)
        found = ModelAlias.objects.filter(name=name, alias=alias).select_related("model_version").first()
        if found is None:
            known = ModelVersion.objects.filter(name=name).exists()
            why = f"model {name!r} has no alias {alias!r}" if known else f"unknown model {name!r}"
            raise RegistryError(why, status=404)
        return found.model_version
    name, _, version = ref.partition(":")
    versions = ModelVersion.objects.filter(name=name)
    if version:
        if not (version.isascii() and version.isdigit()):  # "²".isdigit() is True, and int("²") fails
            raise RegistryError(f"model version {version!r} is not a number")
        versions = versions.filter(version=int(version))
    model = versions.order_by("-version").first()
    if model is None:
        raise RegistryError(f"unknown model {ref!r}", status=404)
    return model


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise RegistryError(f"a reason has at most {MAX_REASON} characters")
    return reason


@transaction.atomic
def promote(name: str, version: int, alias: str, user: Any = None, reason: str = "", via: str = "api") -> AliasMove:
    """Point ``name@alias`` at ``name:version``.

    Raises:
        RegistryError: a bad alias or reason (400), an unknown version (404), or the alias already names that
            version (409). Nothing moves then.
    """
    _check_alias(alias)
    reason = _reason(reason)
    target = ModelVersion.objects.filter(name=name, version=version).first()
    if target is None:
        raise RegistryError(f"unknown model version {name}:{version}", status=404)
    row = ModelAlias.objects.select_for_update().filter(name=name, alias=alias).first()
    if row is not None and row.model_version_id == target.pk:
        raise RegistryError(f"{name}@{alias} already names version {version}", status=409)
    if row is None:
        try:
            with transaction.atomic():  # two first promotions at once: the constraint lets one in
                row = ModelAlias.objects.create(name=name, alias=alias, model_version=target, updated_by=_user(user))
        except IntegrityError:
            raise RegistryError(f"{name}@{alias} moved meanwhile; try again", status=409) from None
        return _log(row, AliasMove.Action.PROMOTE, None, user, via, reason)
    return _move(row, AliasMove.Action.PROMOTE, target, user, via, reason)


@transaction.atomic
def rollback(name: str, alias: str, user: Any = None, reason: str = "", via: str = "api") -> AliasMove:
    """Point ``name@alias`` back at the version it named before its current version was promoted.

    Raises:
        RegistryError: a bad alias or reason (400), no such alias (404), or nothing earlier to go back to (409).
    """
    _check_alias(alias)
    reason = _reason(reason)
    row = ModelAlias.objects.select_for_update().filter(name=name, alias=alias).select_related("model_version").first()
    if row is None:
        raise RegistryError(f"model {name!r} has no alias {alias!r}", status=404)
    promoted = (
        AliasMove.objects.filter(name=name, alias=alias, action=AliasMove.Action.PROMOTE, to_version=row.model_version)
        .select_related("from_version")
        .order_by("-created_at", "-pk")
        .first()
    )
    if promoted is None or promoted.from_version is None:
        raise RegistryError(
            f"{name}@{alias} names version {row.model_version.version}, and it named nothing before that", status=409
        )
    return _move(row, AliasMove.Action.ROLLBACK, promoted.from_version, user, via, reason)


def _move(row: ModelAlias, action: str, target: ModelVersion, user: Any, via: str, reason: str) -> AliasMove:
    """Point the (locked) alias row at ``target`` and log the move."""
    previous = row.model_version
    row.model_version, row.updated_by = target, _user(user)
    row.save(update_fields=["model_version", "updated_by", "updated_at"])
    return _log(row, action, previous, user, via, reason)


def _log(row: ModelAlias, action: str, previous: ModelVersion | None, user: Any, via: str, reason: str) -> AliasMove:
    return AliasMove.objects.create(
        name=row.name,
        alias=row.alias,
        action=action,
        from_version=previous,
        to_version=row.model_version,
        moved_by=_user(user),
        actor=actor(user, via),
        reason=reason,
    )


def _user(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def actor(user: Any, via: str) -> str:
    """``"alice (api)"``; a command-line move without a site user names the operating-system user."""
    if _user(user) is not None:
        return f"{user.get_username()} ({via})"
    try:
        return f"{getpass.getuser()} ({via}, no site user)"
    except OSError:  # no login name (a container without a passwd entry)
        return f"unknown ({via}, no site user)"


def models_summary() -> list[dict[str, Any]]:
    """One row per model name: its versions, the latest, and its aliases."""
    rows: dict[str, dict[str, Any]] = {}
    for model in ModelVersion.objects.order_by("name", "version").only("name", "version", "task_type", "created_at"):
        row = rows.setdefault(model.name, {"name": model.name, "task": model.task_type, "versions": [], "aliases": {}})
        row["versions"].append(model.version)
        row["latest"] = model.version
    for alias in ModelAlias.objects.select_related("model_version").order_by("name", "alias"):
        if alias.name in rows:
            rows[alias.name]["aliases"][alias.alias] = alias.model_version.version
    return list(rows.values())


def model_detail(name: str) -> dict[str, Any]:
    """Every version of ``name`` (with its aliases and test metrics) and every move of its aliases, newest first.

    Raises:
        RegistryError: no model of that name (404).
    """
    versions = list(ModelVersion.objects.filter(name=name).select_related("dataset_version").order_by("version"))
    if not versions:
        raise RegistryError(f"unknown model {name!r}", status=404)
    aliases = dict(ModelAlias.objects.filter(name=name).values_list("alias", "model_version__version"))
    moves = AliasMove.objects.filter(name=name).select_related("from_version", "to_version")
    return {
        "name": name,
        "aliases": aliases,
        "versions": [
            {
                "version": v.version,
                "task": v.task_type,
                "dataset": v.dataset_version.name if v.dataset_version else "",
                "archive_sha256": v.archive_sha256,
                "created_at": v.created_at.isoformat(),
                "aliases": sorted(a for a, n in aliases.items() if n == v.version),
                "test_metrics": {k: v.metrics.get("test", {}).get(k) for k in ("accuracy", "macro_f1")},
                "trained_on": v.manifest.get("data_provenance"),  # sources, licence notes, counts (archive manifest)
            }
            for v in versions
        ],
        "moves": [
            {
                "alias": m.alias,
                "action": m.action,
                "from": m.from_version.version if m.from_version else None,
                "to": m.to_version.version,
                "by": m.actor,
                "reason": m.reason,
                "at": m.created_at.isoformat(),
            }
            for m in moves.order_by("-created_at", "-pk")
        ],
    }
