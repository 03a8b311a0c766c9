"""Run a TensorRT plan with torch CUDA tensors: the serving half of the TensorRT path (``tensorrt_build``
beside it builds the plan at export).

Unverified here: no machine in this project has TensorRT. The code follows TensorRT 10's documented Python
API (name-based I/O tensors, ``execute_async_v3``). The ``tensorrt`` module is imported only inside
functions, so this file imports anywhere; ``tensorrt_available()`` says why it cannot run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpack.inputs import InputError


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA GPU is missing; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"TensorRT is unavailable: {reason}")
        self.reason = reason


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build the model; carries the ONNX path and every error reported."""

    def __init__(self, path: Path, errors: list[str]) -> None:
        super().__init__(f"{path}: TensorRT build failed: " + "; ".join(errors))
        self.path = path
        self.errors = errors


def tensorrt_available() -> tuple[bool, str]:
    """Whether TensorRT can build and run engines on this machine.

    Returns:
        ``(True, "tensorrt X on GPU")`` or ``(False, reason)``; never guesses.
    """
    try:
        import tensorrt as trt  # optional: only GPU machines have it; this file imports anywhere
    except Exception as exc:  # ImportError, or the PyPI stub's error when the real wheel is not installed
        return False, f"the tensorrt Python package cannot be imported ({type(exc).__name__}: {exc})"
    if not hasattr(trt, "Builder"):
        return False, "the installed tensorrt package is a stub without the real bindings"
    import torch  # loaded with TensorRT only, never on an ONNX-only import

    if not torch.cuda.is_available():
        return False, "CUDA is not available to torch (no GPU, or a CPU-only torch build)"
    return True, f"tensorrt {trt.__version__} on {gpu_name()}"


def require_tensorrt() -> Any:
    ok, reason = tensorrt_available()
    if not ok:
        raise TensorRTUnavailable(reason)
    import tensorrt as trt  # optional: only GPU machines have it; this file imports anywhere

    return trt


def gpu_name() -> str:
    import torch  # loaded with TensorRT only, never on an ONNX-only import

    major, minor = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()} (sm_{major}{minor})"


class TensorRTRuntime:
    """Runs a plan file on the current CUDA device; inputs and outputs are torch tensors.

    Device memory and the stream come from torch (``torch.cuda.current_stream()``), so no pycuda is needed.
    One instance holds one execution context: use one per thread.
    """

    def __init__(self, plan_path: Path) -> None:
        """Deserialize the engine and create an execution context.

        Args:
            plan_path: A plan written by ``build_engine`` with the same TensorRT version and GPU architecture.

        Raises:
            TensorRTUnavailable: TensorRT or CUDA is missing.
            EngineBuildError: The plan is missing or does not deserialize (wrong version or GPU).
        """
        trt = require_tensorrt()
        import torch  # loaded with TensorRT only, never on an ONNX-only import

        self.plan_path = Path(plan_path)
        if not self.plan_path.is_file():
            raise EngineBuildError(self.plan_path, ["no such plan file"])
        self._torch = torch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.plan_path.read_bytes())
        if self.engine is None:
            raise EngineBuildError(
                self.plan_path,
                ["deserialize_cuda_engine failed: built by another TensorRT version or GPU architecture?"],
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._dtypes = {n: _torch_dtype(trt, self.engine.get_tensor_dtype(n)) for n in names}

    def __call__(self, **inputs: Any) -> dict[str, Any]:
        """Run the engine.

        Args:
            **inputs: One tensor (torch or numpy) per engine input, by name; shapes must lie within the profile.

        Returns:
            ``{output name: torch CUDA tensor}``, complete (the stream is synchronised).

        Raises:
            ValueError: An input is missing, or its shape is outside the optimisation profile.
            RuntimeError: ``execute_async_v3`` reported failure.
        """
        torch = self._torch
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs: {sorted(missing)}")
        keep: dict[str, Any] = {}  # holds the device tensors alive until the stream has finished
        for name in self.inputs:
            value = torch.as_tensor(inputs[name]).to(device="cuda", dtype=self._dtypes[name]).contiguous()
            if not self.context.set_input_shape(name, tuple(value.shape)):
                raise ValueError(f"input {name!r} shape {tuple(value.shape)} is outside the engine's profile")
            self.context.set_tensor_address(name, value.data_ptr())
            keep[name] = value
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))  # resolved now that every input shape is set
            out = torch.empty(shape, dtype=self._dtypes[name], device="cuda")
            self.context.set_tensor_address(name, out.data_ptr())
            keep[name] = out
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"{self.plan_path}: execute_async_v3 failed (see the TensorRT log)")
        stream.synchronize()
        return {name: keep[name] for name in self.outputs}


def _torch_dtype(trt: Any, dtype: Any) -> Any:
    import torch  # only reached with TensorRT loaded, which needs torch's CUDA anyway

    if dtype == getattr(trt.DataType, "BF16", None):  # numpy has no bfloat16, so trt.nptype cannot map it
        return torch.bfloat16
    return torch.from_numpy(np.empty(0, dtype=trt.nptype(dtype))).dtype


class TensorRTBackend:
    """A TensorRT plan built at export on a GPU machine (unverified here: no machine has TensorRT)."""

    name = "tensorrt"
    file_key = "tensorrt"

    def __init__(self, path: Path) -> None:
        try:
            self.runtime = TensorRTRuntime(path)
        except (TensorRTUnavailable, EngineBuildError) as exc:
            raise InputError(None, str(exc)) from None
        self.input_name, self.output_name = self.runtime.inputs[0], self.runtime.outputs[0]

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return tensorrt_available()

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        return self.runtime(**{self.input_name: inputs})[self.output_name].float().cpu().numpy()  # type: ignore[no-any-return]
