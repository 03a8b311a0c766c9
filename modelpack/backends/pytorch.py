"""The PyTorch program export writes beside the ONNX file (``model.pt2``, a ``torch.export`` program: no
training code needed), on CPU, or on CUDA in FP16 and under ``torch.compile`` when a GPU is there."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelpack.inputs import InputError


class TorchBackend:
    """The exported PyTorch program on CPU or CUDA, optionally in FP16 and compiled.

    FP16 runs under autocast (matmuls and convolutions in half precision, reductions and masks where
    autocast keeps them): a plain ``.half()`` breaks on graphs that build float32 masks. Logits come back
    as float32 NumPy arrays either way.
    """

    name = "torch"
    file_key = "torch"

    def __init__(self, path: Path, device: str = "cpu", fp16: bool = False, compile: bool = False) -> None:
        import torch  # imported on load: a worker serving ONNX models never pays torch's import

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(None, f"device {device} asked for, but torch sees no CUDA GPU")
        self.torch, self.device, self.fp16 = torch, device, fp16
        module = torch.export.load(str(path)).module().to(device)
        self.module = torch.compile(module) if compile else module

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "torch is a dependency of fsml"

    @staticmethod
    def serving_options() -> dict[str, object]:
        """How a worker runs the program: on the GPU in FP16 when torch sees one, else on CPU."""
        import torch  # imported on use, as in __init__

        return {"device": "cuda", "fp16": True} if torch.cuda.is_available() else {}

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        torch = self.torch
        tensor = torch.from_numpy(inputs).to(self.device)
        device_type = self.device.split(":")[0]
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.float16, enabled=self.fp16):
            return self.module(tensor).float().cpu().numpy()  # type: ignore[no-any-return]  # torch's numpy()
