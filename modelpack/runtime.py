"""Run an unpacked model archive: the one runtime evaluation and the workers share.

A runtime per task type (``RUNTIMES``) checks and encodes inputs and decodes outputs; the engine under it is
one of ``modelpack.backends`` (ONNX Runtime, its INT8 copy, the PyTorch program, TensorRT).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from modelpack.archive import MANIFEST
from modelpack.backends import BACKENDS, FILE_KEYS, SERVING_ORDER, available, make_backend
from modelpack.backends.pytorch import TorchBackend
from modelpack.inputs import MAX_IMAGE_BYTES, InputError, check_text

TEXT_CODE_FILE = "text_processing.py"  # modelpack/text.py as the model was exported with it
_code_lock = threading.Lock()


@dataclass(frozen=True)
class Prediction:
    """One input's answer. ``label`` is a label name, a list of names (multi-label) or a list of
    {start, end, label} spans."""

    label: Any
    confidence: float
    scores: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "scores": self.scores}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis: (B, C) or (B, T, C)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class ModelRuntime:
    """An unpacked archive loaded into a backend: ``predict`` takes a batch of inputs and returns one
    Prediction per input; bad inputs raise InputError with the index of the first bad one."""

    def __init__(self, model_dir: Path, backend: str = "onnxruntime", **options: Any) -> None:
        self.manifest = read_manifest(model_dir)
        self.labels: list[str] = list(self.manifest["labels"])
        self.preprocessing: dict[str, Any] = self.manifest["preprocessing"]
        self.backend = make_backend(model_dir, self.manifest["model_files"], backend, **options)
        self.backend_name = backend
        # Why ``load_serving_runtime`` did not take the backends before this one; ``load_errors`` are those of
        # them that were there but failed to load (the rest were absent: no file, no TensorRT or GPU).
        self.passed_over: list[str] = []
        self.load_errors: list[str] = []

    def validate(self, inputs: list[Any]) -> list[Any]:
        if not isinstance(inputs, list) or not inputs:
            raise InputError(None, "expected a non-empty list of inputs")
        return [self.check(x, i) for i, x in enumerate(inputs)]

    def check(self, value: Any, index: int) -> Any:
        return check_text(value, index)

    def encode(self, inputs: list[Any]) -> np.ndarray:
        raise NotImplementedError

    def logits(self, inputs: list[Any]) -> np.ndarray:
        """Raw scores: (B, C), or (B, T, C) for span taggers."""
        return self.backend(self.encode(self.validate(inputs)))

    def predict(self, inputs: list[Any]) -> list[Prediction]:
        probs = softmax(self.logits(inputs))  # (B, C)
        out = []
        for row in probs:
            best = int(row.argmax())
            scores = {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}
            out.append(Prediction(self.labels[best], round(float(row[best]), 6), scores))
        return out


def text_code(model_dir: Path, manifest: dict[str, Any]) -> ModuleType:
    """The tokeniser, vocabulary and span decoding the model was exported with: the archive's own copy of
    ``modelpack/text.py``, checksummed with the weights.

    The copy is imported under a name derived from its SHA-256, once per process, so archives exported with
    different tokenisers run side by side in one worker.
    """
    name = manifest["preprocessing"].get("code")
    if not name:
        raise InputError(None, "the archive names no processing code (preprocessing.code)")
    path = model_dir / name
    if not path.is_file() or "/" in name:
        raise InputError(None, f"the archive's processing code {name!r} is missing")
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    expected = manifest.get("files", {}).get(name)
    if expected is not None and expected != digest:  # export folders have no file list; archives always do
        raise InputError(None, f"the archive's processing code {name!r} does not match its manifest checksum")
    module_name = f"fsml_archive_text_{digest[:16]}"
    with _code_lock:  # one import per process, never a half-run module handed to another thread
        if module_name in sys.modules:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while the file runs
        try:
            exec(compile(source, str(path), "exec"), module.__dict__)  # the bytes just checked, not a re-read
        except Exception as exc:
            del sys.modules[module_name]
            raise InputError(None, f"the archive's processing code {name!r} does not load: {exc}") from exc
    return module


class TextClassifierRuntime(ModelRuntime):
    """Texts in, one label each; tokenised by the archive's own processing code (``text_code``)."""

    def __init__(self, model_dir: Path, backend: str = "onnxruntime", **options: Any) -> None:
        super().__init__(model_dir, backend, **options)
        self.max_len = int(self.preprocessing["max_len"])
        self.text = text_code(model_dir, self.manifest)  # the manifest read once, in ModelRuntime
        self.vocab = self.text.Vocabulary.load(model_dir / self.preprocessing["vocab"])

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.vocab.encode_batch(texts, self.max_len)  # (B, T)


class MultiLabelRuntime(TextClassifierRuntime):
    """Texts in, any number of labels each (sigmoid > 0.5); confidence is the least certain decision."""

    def predict(self, texts: list[str]) -> list[Prediction]:
        probs = 1.0 / (1.0 + np.exp(-self.logits(texts)))  # (B, L)
        out = []
        for row in probs:
            chosen = [label for label, p in zip(self.labels, row, strict=True) if p > 0.5]
            certainty = float(np.maximum(row, 1.0 - row).min())
            scores = {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}
            out.append(Prediction(chosen, round(certainty, 6), scores))
        return out


class SpanTaggerRuntime(TextClassifierRuntime):
    """Texts in, character spans out (BIO tags per token); confidence is the mean top tag probability."""

    def predict(self, texts: list[str]) -> list[Prediction]:
        probs = softmax(self.logits(texts))  # (B, T, C)
        tags = self.manifest["outputs"]
        out = []
        for text, row in zip(texts, probs, strict=True):
            offsets = self.text.tokenize_with_offsets(text)[: self.max_len]
            best = row[: len(offsets)].argmax(-1)
            spans = self.text.tags_to_spans(offsets, [tags[i] for i in best])
            confidence = float(row[: len(offsets)].max(-1).mean()) if offsets else 1.0
            out.append(Prediction(spans, round(confidence, 6), {}))
        return out


class ImageClassifierRuntime(ModelRuntime):
    """Encoded images (PNG, JPEG, ... bytes) in, one label each; resized and scaled as in training."""

    def check(self, value: Any, index: int) -> Any:
        from PIL import Image, UnidentifiedImageError  # only image models need Pillow at run time

        if not isinstance(value, bytes | bytearray) or not value:
            raise InputError(index, f"expected image file bytes, got {type(value).__name__}")
        if len(value) > MAX_IMAGE_BYTES:
            raise InputError(index, f"image larger than {MAX_IMAGE_BYTES} bytes")
        try:
            with Image.open(io.BytesIO(value)) as img:
                return img.convert(self.preprocessing["mode"]).resize((self.size, self.size))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(index, f"not a readable image ({exc})") from None

    @property
    def size(self) -> int:
        return int(self.preprocessing["image_size"])

    def encode(self, images: list[Any]) -> np.ndarray:
        pixels = np.stack([np.asarray(img, dtype=np.float32) * self.preprocessing["scale"] for img in images])
        return pixels[:, None] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2)  # (B, C, H, W)


RUNTIMES: dict[str, type[ModelRuntime]] = {
    "text_classification": TextClassifierRuntime,
    "multi_label": MultiLabelRuntime,
    "spans": SpanTaggerRuntime,
    "image_classification": ImageClassifierRuntime,
}


def read_manifest(model_dir: Path) -> dict[str, Any]:
    return json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))


def load_runtime(model_dir: Path, backend: str = "onnxruntime", **options: Any) -> ModelRuntime:
    """Pick the runtime for an unpacked archive from its manifest's task type.

    ``options`` go to the backend: ``providers`` for ONNX Runtime; ``device``, ``fp16``, ``compile`` for torch.
    """
    task = read_manifest(model_dir).get("task")
    if task not in RUNTIMES:
        raise InputError(None, f"no runtime for task type {task!r}")
    return RUNTIMES[task](model_dir, backend, **options)


def check_serving_backend(name: str) -> str:
    """A serving backend's name (``FSML_SERVING_BACKEND``), checked: ``auto``, or one of ``BACKENDS``.

    Raises:
        InputError: any other name.
    """
    if name != "auto" and name not in BACKENDS:
        raise InputError(None, f"unknown serving backend {name!r}; choose auto or one of {', '.join(BACKENDS)}")
    return name


def serving_options(backend: str) -> dict[str, Any]:
    """How a worker runs ``backend``: the PyTorch program on the GPU in FP16 when torch sees one, else on CPU."""
    return TorchBackend.serving_options() if backend == "torch" else {}


def load_serving_runtime(model_dir: Path, backend: str = "auto") -> ModelRuntime:
    """The runtime a worker serves an unpacked archive with.

    ``auto`` takes the first of ``SERVING_ORDER`` that loads: the TensorRT plan when the archive has one and
    TensorRT and a GPU are here, else ONNX Runtime, else the PyTorch program. Why it passed over the others is
    kept in the runtime's ``passed_over``. A named backend is loaded as asked, or raises.

    Raises:
        InputError: an unknown backend; a named backend that cannot load; with ``auto``, no backend that can
            (each one's reason is in the message).
    """
    if check_serving_backend(backend) != "auto":
        return load_runtime(model_dir, backend, **serving_options(backend))
    files = read_manifest(model_dir)["model_files"]
    passed_over: list[str] = []
    errors: list[str] = []
    for name in SERVING_ORDER:
        if FILE_KEYS[name] not in files:
            passed_over.append(f"{name}: the archive has no {FILE_KEYS[name]} model")
            continue
        ok, reason = available(name)
        if not ok:
            passed_over.append(f"{name}: {reason}")
            continue
        try:
            runtime = load_runtime(model_dir, name, **serving_options(name))
        except Exception as exc:  # a missing package, a file the library refuses, a plan for another GPU: next one
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            passed_over.append(errors[-1])
            continue
        runtime.passed_over, runtime.load_errors = passed_over, errors
        return runtime
    raise InputError(None, "no backend can load this model: " + "; ".join(passed_over))
