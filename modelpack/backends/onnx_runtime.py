"""ONNX Runtime on the archive's FP32 ONNX model: the default backend, on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxBackend:
    """An ONNX Runtime session on one thread: one session per worker process, processes give parallelism."""

    name = "onnxruntime"
    file_key = "fp32"

    def __init__(self, path: Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort  # imported on load, so that importing the runtime stays cheap

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "ONNX Runtime is a dependency of fsml"

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: inputs})[0]  # type: ignore[no-any-return]  # ORT is untyped
