"""Build a TensorRT engine (a plan file) from an exported ONNX model: the build half of the TensorRT path,
run at export on a GPU machine; ``tensorrt`` beside it runs the plan.

Unverified here: no machine in this project has TensorRT. The code follows TensorRT 10's documented Python
API (name-based I/O tensors, ``execute_async_v3``); only the path where TensorRT or CUDA is missing runs in
the tests. The ``tensorrt`` module is imported only inside functions, so this file imports anywhere.

Notes from NVIDIA's docs that shape the code:

- Explicit batch is the only mode in TensorRT 10, so ``create_network(0)``; the ``EXPLICIT_BATCH`` flag is
  deprecated.
- ``builder.platform_has_fast_fp16`` is deprecated since 10.5 ("query data type support from CUDA
  directly") and weakly typed precision flags (``BuilderFlag.FP16``) since 10.12; TensorRT 11 removes both
  and wants FP16 put into the ONNX graph (ModelOpt AutoCast). So FP16 is requested only when the flag still
  exists, and fast FP16 is judged from the CUDA compute capability when the builder no longer says.
- A plan file only runs on the GPU architecture and TensorRT version that built it: ``EngineReport`` records
  both so a cache of plans can be keyed by them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelpack.backends.tensorrt import EngineBuildError, gpu_name, require_tensorrt

log = logging.getLogger(__name__)

Shape = tuple[int, ...]
DEFAULT_WORKSPACE_BYTES = 1 << 30


@dataclass
class EngineReport:
    """A built engine.

    Attributes:
        plan_path: The serialized engine written.
        plan_bytes: Its size.
        fp16: Whether FP16 kernels were allowed.
        input_shapes: ``{name: (min, opt, max)}`` of the optimisation profile.
        tensorrt_version: ``tensorrt.__version__`` that built it (plans do not load in other versions).
        gpu: Device name and compute capability, e.g. ``"NVIDIA H100 80GB HBM3 (sm_90)"``.
        notes: Why FP16 was skipped, and similar.
    """

    plan_path: str
    plan_bytes: int
    fp16: bool
    input_shapes: dict[str, tuple[Shape, Shape, Shape]]
    tensorrt_version: str
    gpu: str
    notes: list[str] = field(default_factory=list)


def _fast_fp16(builder: Any) -> bool:
    has_fast = getattr(builder, "platform_has_fast_fp16", None)  # deprecated in 10.5, gone in 11
    if has_fast is not None:
        return bool(has_fast)
    import torch  # reached only with TensorRT present, on a GPU machine

    return torch.cuda.get_device_capability() >= (7, 0)  # tensor cores; FP16 on older parts is rarely faster


def build_engine(
    onnx_path: Path,
    plan_path: Path,
    input_shapes: dict[str, tuple[Shape, Shape, Shape]],
    fp16: bool = True,
    workspace_bytes: int = DEFAULT_WORKSPACE_BYTES,
) -> EngineReport:
    """Parse an ONNX model, build a TensorRT engine with one optimisation profile, and write the plan.

    Args:
        onnx_path: The FP32 ONNX model (external data next to it is found through its path).
        plan_path: Where to write the serialized engine.
        input_shapes: For every input with a dynamic dimension, ``(min, opt, max)`` shapes, e.g.
            ``{"input_ids": ((1, 1), (32, 128), (256, 512))}``. TensorRT tunes kernels for ``opt``.
        fp16: Allow FP16 kernels when the GPU has fast FP16 and this TensorRT still has the flag.
        workspace_bytes: Scratch memory limit for tactic selection.

    Returns:
        An ``EngineReport``.

    Raises:
        TensorRTUnavailable: TensorRT or CUDA is missing (``reason`` says which).
        EngineBuildError: The ONNX file is missing, a parser error occurred (all are listed), a dynamic input
            has no shapes, or the build returned nothing.
    """
    trt = require_tensorrt()
    onnx_path, plan_path = Path(onnx_path), Path(plan_path)
    if not onnx_path.is_file():
        raise EngineBuildError(onnx_path, ["no such ONNX file"])
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    # path= lets the parser find external weight files next to the model.
    if not parser.parse(onnx_path.read_bytes(), path=str(onnx_path)):
        raise EngineBuildError(
            onnx_path, [str(parser.get_error(i)) for i in range(parser.num_errors)] or ["parse failed"]
        )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    notes: list[str] = []
    use_fp16 = False
    if fp16:
        if not hasattr(trt.BuilderFlag, "FP16"):
            notes.append("this TensorRT has no BuilderFlag.FP16 (11.x); convert the ONNX to FP16 first")
        elif not _fast_fp16(builder):
            notes.append("the GPU has no fast FP16; building FP32")
        else:
            config.set_flag(trt.BuilderFlag.FP16)
            use_fp16 = True

    profile = builder.create_optimization_profile()
    profile_shapes: dict[str, tuple[Shape, Shape, Shape]] = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name in input_shapes:
            low, opt, high = (tuple(int(d) for d in shape) for shape in input_shapes[tensor.name])
            profile.set_shape(tensor.name, low, opt, high)
            profile_shapes[tensor.name] = (low, opt, high)
        elif any(d < 0 for d in tensor.shape):
            raise EngineBuildError(
                onnx_path,
                [
                    f"input {tensor.name!r} has dynamic shape {tuple(tensor.shape)}"
                    " but no (min, opt, max) in input_shapes"
                ],
            )
    unknown = set(input_shapes) - set(profile_shapes)
    if unknown:  # a misspelt name would otherwise leave the real input without a profile, or be ignored
        names = [network.get_input(i).name for i in range(network.num_inputs)]
        raise EngineBuildError(onnx_path, [f"input_shapes names {sorted(unknown)} are not inputs; inputs are {names}"])
    config.add_optimization_profile(profile)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(onnx_path, ["build_serialized_network returned None (see the TensorRT log)"])
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(serialized))
    return EngineReport(
        plan_path=str(plan_path),
        plan_bytes=plan_path.stat().st_size,
        fp16=use_fp16,
        input_shapes=profile_shapes,
        tensorrt_version=trt.__version__,
        gpu=gpu_name(),
        notes=notes,
    )
