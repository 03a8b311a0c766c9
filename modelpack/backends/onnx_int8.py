"""ONNX Runtime on the INT8 copy of the model (``training.quantize``: dynamic quantisation of MatMul/Gemm for
text models, static calibrated quantisation for convolutions), written beside the FP32 file."""

from __future__ import annotations

from modelpack.backends.onnx_runtime import OnnxBackend


class OnnxInt8Backend(OnnxBackend):
    """The INT8 model in the same one-thread session as the FP32 one; only the file differs."""

    name = "onnxruntime-int8"
    file_key = "int8"
