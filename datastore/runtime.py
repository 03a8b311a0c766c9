"""Run an unpacked model archive with ONNX Runtime: the one runtime evaluation and the workers share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datastore.archive import MANIFEST
from datastore.text import Vocabulary

MAX_TEXT_CHARS = 20_000


class InputError(ValueError):
    """Inputs a model cannot take; carries the index of the offending input and the reason."""

    def __init__(self, index: int | None, reason: str) -> None:
        where = f"input {index}: " if index is not None else ""
        super().__init__(f"{where}{reason}")
        self.index = index
        self.reason = reason


def check_text(text: Any, index: int | None = None) -> str:
    """A text the text models accept: a non-empty string of at most MAX_TEXT_CHARS characters."""
    if not isinstance(text, str):
        raise InputError(index, f"expected a non-empty string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(index, "expected a non-empty string, got an empty text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(index, f"text longer than {MAX_TEXT_CHARS} characters")
    return text


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    scores: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "scores": self.scores}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class TextClassifierRuntime:
    """A text classifier archive loaded into an ONNX Runtime session."""

    def __init__(self, model_dir: Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort  # imported here so that importing this module stays cheap

        self.manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        self.labels: list[str] = list(self.manifest["labels"])
        self.max_len = int(self.manifest["preprocessing"]["max_len"])
        self.vocab = Vocabulary.load(model_dir / self.manifest["preprocessing"]["vocab"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one session per worker process; processes give parallelism
        self.session = ort.InferenceSession(
            str(model_dir / self.manifest["model_file"]),
            sess_options=options,
            providers=providers or ["CPUExecutionProvider"],
        )
        self.input_name = self.session.get_inputs()[0].name

    def validate(self, texts: list[Any]) -> list[str]:
        if not isinstance(texts, list) or not texts:
            raise InputError(None, "expected a non-empty list of texts")
        for i, text in enumerate(texts):
            check_text(text, i)
        return texts

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw scores, (B, C)."""
        ids = self.vocab.encode_batch(self.validate(texts), self.max_len)  # (B, T)
        return self.session.run(None, {self.input_name: ids})[0]

    def predict(self, texts: list[str]) -> list[Prediction]:
        probs = softmax(self.logits(texts))  # (B, C)
        out = []
        for row in probs:
            best = int(row.argmax())
            scores = {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}
            out.append(Prediction(self.labels[best], round(float(row[best]), 6), scores))
        return out


def load_runtime(model_dir: Path) -> TextClassifierRuntime:
    """Pick the runtime for an unpacked archive from its manifest's task type."""
    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    task = manifest.get("task")
    if task == "text_classification":
        return TextClassifierRuntime(model_dir)
    raise InputError(None, f"no runtime for task type {task!r}")
