"""The engines that run an archive's model file, one module each.

=================== ======================= ===============================================================
backend             module                  runs
=================== ======================= ===============================================================
``onnxruntime``     ``onnx_runtime``        the FP32 ONNX model on ONNX Runtime (the default, CPU)
``onnxruntime-int8````onnx_int8``           the INT8 copy that ``training.quantize`` writes
``torch``           ``pytorch``             the ``torch.export`` program, on CPU or CUDA (FP16 under autocast)
``tensorrt``        ``tensorrt``            a TensorRT plan; ``tensorrt_build`` builds it at export
=================== ======================= ===============================================================

Every backend takes the model file's path (plus its own options) and is called with a NumPy batch,
returning float32 logits as a NumPy array. ``available()`` says, without loading anything, whether this
machine can run it at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelpack.backends.onnx_int8 import OnnxInt8Backend
from modelpack.backends.onnx_runtime import OnnxBackend
from modelpack.backends.pytorch import TorchBackend
from modelpack.backends.tensorrt import TensorRTBackend
from modelpack.inputs import InputError


class Backend(Protocol):
    def __call__(self, inputs: np.ndarray) -> np.ndarray: ...


BACKEND_CLASSES: dict[str, Any] = {
    cls.name: cls for cls in (OnnxBackend, OnnxInt8Backend, TorchBackend, TensorRTBackend)
}
BACKENDS = tuple(BACKEND_CLASSES)
FILE_KEYS = {name: cls.file_key for name, cls in BACKEND_CLASSES.items()}
# What ``auto`` tries, in order, when a worker loads a model: the fastest the machine and the archive allow.
SERVING_ORDER = ("tensorrt", "onnxruntime", "torch")


def make_backend(model_dir: Path, files: dict[str, str], backend: str = "onnxruntime", **options: Any) -> Backend:
    """The backend that runs the archive's model; a clear error when the archive lacks its file.

    Args:
        model_dir: The unpacked archive.
        files: The manifest's ``model_files`` (fp32, int8, torch, tensorrt).
        backend: One of ``BACKENDS``.
        **options: The backend's own options (``providers``; ``device``, ``fp16``, ``compile``).
    """
    cls = BACKEND_CLASSES.get(backend)
    if cls is None:
        raise InputError(None, f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if cls.file_key not in files:
        raise InputError(None, f"this archive has no {cls.file_key} model for the {backend} backend")
    return cls(model_dir / files[cls.file_key], **options)  # type: ignore[no-any-return]  # classes from a dict


def available(backend: str) -> tuple[bool, str]:
    """Whether this machine can run ``backend`` at all (TensorRT needs its package and a GPU)."""
    return BACKEND_CLASSES[backend].available()  # type: ignore[no-any-return]  # classes from a dict
