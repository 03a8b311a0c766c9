"""Dataset and model versions: their rows, metrics, and a model version's archive unpacked from the store."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from datastore.models import DatasetVersion, ModelVersion
from modelpack.archive import is_unpacked, unpack
from modelpack.store import store_for_location

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # dataset and model names: safe as folder names


def record_dataset_version(**fields: Any) -> DatasetVersion:
    return DatasetVersion.objects.create(**fields)


def register_model_version(
    name: str,
    task_type: str,
    archive_path: str,
    archive_sha256: str,
    manifest: dict[str, Any],
    dataset_version: DatasetVersion | None,
    version: int | None = None,
) -> ModelVersion:
    """Record a packaged model as version ``version`` (default: the next one) of ``name``.

    Versions are immutable: the unique constraint on (name, version) refuses a second row.
    """
    return ModelVersion.objects.create(
        name=name,
        version=version or next_model_version(name),
        task_type=task_type,
        archive_path=archive_path,
        archive_sha256=archive_sha256,
        manifest=manifest,
        dataset_version=dataset_version,
        metrics=manifest.get("metrics", {}),
    )


def next_model_version(name: str) -> int:
    latest = ModelVersion.objects.filter(name=name).aggregate(v=Max("version"))["v"]
    return (latest or 0) + 1


def record_model_metrics(model_version: ModelVersion, split: str, metrics: dict[str, Any]) -> None:
    """Set the metrics of one split of a model version, keeping every other split's.

    The row is read again under a lock: ``model_version`` may have been loaded minutes earlier, and an
    evaluation of another split may have recorded its metrics since.
    """
    with transaction.atomic():
        current = ModelVersion.objects.select_for_update().only("metrics").get(pk=model_version.pk)
        current.metrics = {**current.metrics, split: metrics}
        current.save(update_fields=["metrics"])
    model_version.metrics = current.metrics


def unpacked_model(model: ModelVersion) -> Path:
    """The model version's archive, fetched from the model store (a folder or an S3 bucket), checksums verified,
    unpacked into the model cache; returns the folder.

    Raises:
        modelpack.archive.ArchiveError: the archive is tampered with or malformed.
        modelpack.store.StoreError: the store does not have it or cannot be reached.
    """
    dest = Path(settings.MODEL_CACHE_DIR) / model.name / str(model.version)
    if is_unpacked(dest, model.archive_sha256):
        return dest
    store = store_for_location(model.archive_path, settings.MODEL_STORE_ENDPOINT)
    download = dest.with_name(f".{model.version}-{uuid.uuid4().hex}.tar.gz")  # one per call: fetches may race
    local = store.fetch(model.archive_path, download)
    try:
        unpack(local, dest, expected_sha256=model.archive_sha256)
    finally:
        if local == download:
            download.unlink(missing_ok=True)
    return dest
