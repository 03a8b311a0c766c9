"""Model runtimes per worker process: each archive is verified, unpacked and loaded once, lazily."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from django.conf import settings

from datastore.archive import unpack
from datastore.models import ModelVersion
from datastore.runtime import load_runtime

_cache: dict[int, Any] = {}
_lock = threading.Lock()


def get_runtime(model_version: ModelVersion) -> Any:
    """The loaded runtime of a model version (loaded on first use, never in the parent before fork)."""
    with _lock:
        runtime = _cache.get(model_version.pk)
        if runtime is None:
            dest = Path(settings.MODEL_CACHE_DIR) / model_version.name / str(model_version.version)
            unpack(Path(model_version.archive_path), dest, expected_sha256=model_version.archive_sha256)
            runtime = _cache[model_version.pk] = load_runtime(dest)
        return runtime
