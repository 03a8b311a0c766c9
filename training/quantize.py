"""Dynamic INT8 quantisation of an exported ONNX model with ONNX Runtime, and FP32-vs-INT8 comparison.

Dynamic quantisation stores weights as 8-bit integers and quantises activations on the fly at run time,
so it needs no calibration data. What each op type becomes (ONNX Runtime 1.32, CPU provider, checked in
``tests/unit/test_quantize.py`` on models from torch's dynamo exporter at opset 20):

- ``MatMul``/``Gemm`` (``nn.Linear``) -> ``DynamicQuantizeLinear`` + ``MatMulInteger``. Quantised by default.
- ``Gather`` (``nn.Embedding``) keeps an int8 table and dequantises only the gathered rows. Quantised by
  default: in a text classifier the table is most of the file, and MatMul/Gemm alone barely shrink it
  (a 30k x 128 table: 15.4 MB -> 15.4 MB without Gather, 3.9 MB with it).
- ``Conv`` -> ``ConvInteger``. Older ONNX Runtime builds had no CPU kernel for ``ConvInteger`` with int8
  weights (``NOT_IMPLEMENTED: Could not find an implementation for ConvInteger``); 1.32 runs both weight
  types. It is *not* in the defaults: on our 2-core AVX2 machine a two-conv net at batch 64 went from
  0.14 ms (FP32) to 0.57 ms (uint8 weights) and 1.4 ms (int8 weights). Pass ``op_types=ALL_OP_TYPES`` to
  trade that latency for size; for speed on CNNs, ONNX Runtime recommends static (calibrated) quantisation.

Weights default to unsigned (``QUInt8``, U8U8). ONNX Runtime's own default is ``QInt8`` (U8S8), the fast
path on CPUs with VNNI, but on AVX2/AVX-512 CPUs without VNNI, U8S8 can saturate (ORT's documented remedy
is ``reduce_range`` or U8U8). Measured here on AVX2 without VNNI: max logit drift 0.19 (QUInt8) vs 0.60
(QInt8) on the text model and 0.21 vs 2.9 on the conv net, at the same MatMul latency.
``compare_outputs`` shows whether it matters for a given model and CPU.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

log = logging.getLogger(__name__)

DEFAULT_OP_TYPES: tuple[str, ...] = ("MatMul", "Gemm", "Gather")
ALL_OP_TYPES: tuple[str, ...] = (*DEFAULT_OP_TYPES, "Conv")
# Node types that only a quantised graph contains; counting them tells what was actually quantised.
_QUANTISED_NODES = {
    "MatMulInteger": "MatMul/Gemm",
    "ConvInteger": "Conv",
    "DynamicQuantizeMatMul": "MatMul/Gemm",
    "DynamicQuantizeLSTM": "LSTM",
}


class QuantizationError(Exception):
    """An ONNX file could not be read, quantised, or loaded; carries the path and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass
class QuantReport:
    """What ``quantize_int8`` did.

    Attributes:
        fp32_path: The input model.
        int8_path: The quantised model written.
        fp32_bytes: Size of the input file.
        int8_bytes: Size of the quantised file.
        weight_type: ``"qint8"`` or ``"quint8"``.
        reduce_range: Whether weights used 7 bits.
        op_types_requested: Node types handed to ONNX Runtime for quantisation.
        quantised_ops: Count of quantised nodes by original op type (e.g. ``{"MatMul/Gemm": 2, "Gather": 1}``).
        preprocessed: Whether ``quant_pre_process`` (shape inference and graph optimisation) succeeded.
        opset: The default-domain opset of the quantised model.
    """

    fp32_path: str
    int8_path: str
    fp32_bytes: int
    int8_bytes: int
    weight_type: str
    reduce_range: bool
    op_types_requested: list[str]
    quantised_ops: dict[str, int]
    preprocessed: bool
    opset: int

    @property
    def ratio(self) -> float:
        """FP32 size over INT8 size (4.0 would mean every byte was a quantised weight)."""
        return self.fp32_bytes / self.int8_bytes


def load_checked(path: Path) -> onnx.ModelProto:
    """Load an ONNX file and run the ONNX checker on it.

    Args:
        path: The ``.onnx`` file.

    Returns:
        The loaded model.

    Raises:
        QuantizationError: The file is missing, unparsable, or fails the checker.
    """
    path = Path(path)
    if not path.is_file():
        raise QuantizationError(path, "no such ONNX file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(str(path))  # by path, so models over 2 GiB with external data are checked too
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError... all mean "not a usable model"
        raise QuantizationError(path, f"not a valid ONNX model ({type(exc).__name__}: {exc})") from exc
    return model


def _session(path: Path) -> Any:
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # e.g. NOT_IMPLEMENTED for an op with no CPU kernel
        raise QuantizationError(path, f"ONNX Runtime cannot load it ({exc})") from exc


def _quantised_ops(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    inits = {init.name: init.data_type for init in model.graph.initializer}
    for node in model.graph.node:
        kind = _QUANTISED_NODES.get(node.op_type)
        # A quantised Gather reads an int8/uint8 initializer as its table.
        if node.op_type == "Gather" and inits.get(node.input[0]) in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
            kind = "Gather"
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def quantize_int8(
    onnx_path: Path,
    out_path: Path,
    op_types: Sequence[str] = DEFAULT_OP_TYPES,
    weight_type: Literal["qint8", "quint8"] = "quint8",
    reduce_range: bool = False,
    preprocess: bool = True,
) -> QuantReport:
    """Quantise an FP32 ONNX model's weights to 8 bits with ONNX Runtime dynamic quantisation.

    Dynamic axes survive: activations are quantised per call, so any batch and sequence length the FP32
    model accepted still run.

    Args:
        onnx_path: The FP32 model (e.g. from ``training.export``; dynamo exports at opset 18+ work).
        out_path: Where to write the INT8 model; its folder is created.
        op_types: ONNX node types to quantise (see the module docstring for what each becomes).
        weight_type: ``"quint8"`` (U8U8, accurate everywhere) or ``"qint8"`` (U8S8, faster on VNNI CPUs).
        reduce_range: Quantise weights to 7 bits, ONNX Runtime's cure for U8S8 saturation without VNNI.
        preprocess: Run ``quant_pre_process`` first (symbolic shape inference and ORT graph optimisation,
            which ONNX Runtime recommends before quantising). If it fails, quantise the original and log it.

    Returns:
        A ``QuantReport`` with both file sizes and what was quantised.

    Raises:
        QuantizationError: The input is missing or invalid, quantisation failed, or the output does not
            pass the ONNX checker or does not load in ONNX Runtime.
    """
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if weight_type not in ("qint8", "quint8"):
        raise QuantizationError(onnx_path, f"weight_type must be 'qint8' or 'quint8', not {weight_type!r}")
    load_checked(onnx_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    qtype = QuantType.QInt8 if weight_type == "qint8" else QuantType.QUInt8

    with tempfile.TemporaryDirectory(prefix="fsml-quant-") as tmp:
        source, preprocessed = onnx_path, False
        if preprocess:
            pre = Path(tmp) / "preprocessed.onnx"
            try:
                quant_pre_process(str(onnx_path), str(pre))
                source, preprocessed = pre, True
            except Exception as exc:  # symbolic shape inference rejects some graphs; quantising without it works
                log.info("quant_pre_process failed on %s (%s); quantising the unprocessed model", onnx_path, exc)
        try:
            quantize_dynamic(
                str(source),
                str(out_path),
                weight_type=qtype,
                op_types_to_quantize=list(op_types),
                reduce_range=reduce_range,
            )
        except Exception as exc:  # ORT raises plain Exceptions with the reason in the message
            raise QuantizationError(onnx_path, f"dynamic quantisation failed ({exc})") from exc

    model = load_checked(out_path)
    _session(out_path)  # loading compiles every kernel, so an op with no CPU implementation fails here, not later
    return QuantReport(
        fp32_path=str(onnx_path),
        int8_path=str(out_path),
        fp32_bytes=onnx_path.stat().st_size,
        int8_bytes=out_path.stat().st_size,
        weight_type=weight_type,
        reduce_range=reduce_range,
        op_types_requested=list(op_types),
        quantised_ops=_quantised_ops(model),
        preprocessed=preprocessed,
        opset=_opset(model),
    )


def compare_outputs(
    fp32_path: Path, int8_path: Path, feeds: list[dict[str, np.ndarray]], output: int = 0
) -> dict[str, Any]:
    """Run both models on the same inputs and measure how far INT8 drifts from FP32.

    Accuracy against real labels is the caller's job: ``fp32_argmax`` and ``int8_argmax`` are returned so
    it can be computed from them without running either model again.

    Args:
        fp32_path: The FP32 model.
        int8_path: The quantised model.
        feeds: Batches, each a mapping from input name to array (e.g. ``{"input_ids": ids}``).
        output: Index of the logits output.

    Returns:
        ``max_abs_diff`` (largest logit difference), ``mean_abs_diff``, ``agreement`` (fraction of rows with
        the same argmax), ``rows``, and ``fp32_argmax``/``int8_argmax`` (1-D int arrays over all rows).

    Raises:
        QuantizationError: A model cannot be loaded, or ``feeds`` is empty.
    """
    if not feeds:
        raise QuantizationError(Path(int8_path), "compare_outputs needs at least one batch of inputs")
    fp32, int8 = _session(Path(fp32_path)), _session(Path(int8_path))
    max_diff, abs_sum, count = 0.0, 0.0, 0
    arg32: list[np.ndarray] = []
    arg8: list[np.ndarray] = []
    for feed in feeds:
        a = np.asarray(fp32.run(None, feed)[output], dtype=np.float64)  # (B, classes)
        b = np.asarray(int8.run(None, feed)[output], dtype=np.float64)
        diff = np.abs(a - b)
        max_diff = max(max_diff, float(diff.max(initial=0.0)))
        abs_sum, count = abs_sum + float(diff.sum()), count + diff.size
        arg32.append(a.argmax(axis=-1).reshape(-1))
        arg8.append(b.argmax(axis=-1).reshape(-1))
    fp32_argmax, int8_argmax = np.concatenate(arg32), np.concatenate(arg8)
    return {
        "max_abs_diff": max_diff,
        "mean_abs_diff": abs_sum / max(count, 1),
        "agreement": float((fp32_argmax == int8_argmax).mean()) if fp32_argmax.size else 1.0,
        "rows": int(fp32_argmax.size),
        "fp32_argmax": fp32_argmax,
        "int8_argmax": int8_argmax,
    }
