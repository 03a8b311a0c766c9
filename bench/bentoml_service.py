"""The same model served by BentoML with adaptive batching, for ``bench/serving.py`` (run in BentoML's own
virtualenv: ``python3 -m venv V && V/bin/pip install bentoml onnxruntime numpy``).

It reads an unpacked fsml model archive (``FSML_BENCH_MODEL_DIR``) with nothing but the archive: the ONNX file,
the vocabulary and the archive's own text processing code (``text_processing.py``), one ONNX Runtime thread per
worker as fsml's workers run it. ``FSML_BENCH_BENTO_WORKERS`` worker processes (default 2).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import bentoml
import numpy as np


def _text_module(model_dir: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fsml_text_processing", model_dir / "text_processing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@bentoml.service(workers=int(os.environ.get("FSML_BENCH_BENTO_WORKERS", "2")), traffic={"timeout": 60})
class Sentiment:
    def __init__(self) -> None:
        import onnxruntime as ort

        model_dir = Path(os.environ["FSML_BENCH_MODEL_DIR"])
        manifest = json.loads((model_dir / "manifest.json").read_text())
        self.text = _text_module(model_dir)
        self.vocab = self.text.Vocabulary.load(model_dir / manifest["preprocessing"]["vocab"])
        self.max_len = int(manifest["preprocessing"]["max_len"])
        self.labels = list(manifest["labels"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_dir / manifest["model_file"]), options, providers=["CPUExecutionProvider"]
        )

    @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000)
    def predict(self, texts: list[str]) -> list[dict]:
        ids = self.vocab.encode_batch(texts, self.max_len)
        logits = self.session.run(None, {"input_ids": ids})[0]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = shifted / shifted.sum(axis=1, keepdims=True)
        return [{"label": self.labels[int(row.argmax())], "confidence": round(float(row.max()), 6)} for row in probs]
