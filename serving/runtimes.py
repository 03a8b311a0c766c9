"""Model runtimes per worker process: each archive is verified, unpacked and loaded once, lazily."""

from __future__ import annotations

import threading
from typing import Any

from datastore.models import ModelVersion
from datastore.runtime import load_runtime
from datastore.services import unpacked_model

_cache: dict[int, Any] = {}
_lock = threading.Lock()


def get_runtime(model_version: ModelVersion) -> Any:
    """The loaded runtime of a model version (loaded on first use, never in the parent before fork)."""
    with _lock:
        runtime = _cache.get(model_version.pk)
        if runtime is None:
            runtime = _cache[model_version.pk] = load_runtime(unpacked_model(model_version))
        return runtime
