"""Model runtimes per worker process: each archive is verified, unpacked and loaded once, lazily.

A promotion makes jobs name another version; its runtime is loaded next to the old one, which stays for the
jobs still being served by it. The ``FSML_RUNTIMES_KEPT`` most recently used runtimes stay loaded (default 3).
``FSML_SERVING_BACKEND`` picks the runtime (``auto``: TensorRT, ONNX Runtime, PyTorch, the first that loads;
``modelpack.runtime.load_serving_runtime``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings

from datastore.models import ModelVersion
from datastore.services import unpacked_model
from modelpack.runtime import ModelRuntime, load_serving_runtime
from serving.worker.metrics import RUNTIME_LOADS

log = logging.getLogger(__name__)

_cache: OrderedDict[int, Any] = OrderedDict()
_lock = threading.Lock()


def get_runtime(model_version: ModelVersion) -> Any:
    """The loaded runtime of a model version (loaded on first use, never in the parent before fork)."""
    with _lock:
        runtime = _cache.get(model_version.pk)
        if runtime is None:
            runtime = _cache[model_version.pk] = _load(model_version)
        _cache.move_to_end(model_version.pk)
        while len(_cache) > settings.FSML_RUNTIMES_KEPT:
            _cache.popitem(last=False)
        return runtime


def _load(model_version: ModelVersion) -> ModelRuntime:
    runtime = load_serving_runtime(unpacked_model(model_version), settings.FSML_SERVING_BACKEND)
    for error in runtime.load_errors:  # a backend that should have loaded did not
        log.warning("%s: could not load %s", model_version, error)
    log.info("%s loaded on %s (passed over: %s)", model_version, runtime.backend_name, runtime.passed_over or "none")
    RUNTIME_LOADS.labels(model_version.name, runtime.backend_name).inc()
    return runtime
