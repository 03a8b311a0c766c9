"""Dynamic INT8 quantisation of small trained models exported by torch's dynamo exporter."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from torch import nn

from tests.tiny_models import TinyConvNet, accuracy, export, image_data, text_data, train, trained_bag_classifier
from training.quantize import ALL_OP_TYPES, QuantizationError, compare_outputs, quantize_int8


@pytest.fixture(scope="module")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    model = trained_bag_classifier()
    return model, export(model, text_data(2, seed=1)[0], tmp_path_factory.mktemp("text") / "model.onnx")


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    x, y = image_data(1024, seed=3)
    model = train(TinyConvNet(), x, y, steps=40)
    assert accuracy(model, *image_data(256, seed=4)) > 0.9
    return model, export(model, x[:2], tmp_path_factory.mktemp("conv") / "model.onnx", seq_dynamic=False)


def run(path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input_ids": x})[0]


@pytest.mark.parametrize(("weight_type", "reduce_range"), [("quint8", False), ("qint8", False), ("qint8", True)])
def test_text_model_int8_is_smaller_and_agrees(
    text_model: tuple[nn.Module, Path], tmp_path: Path, weight_type: Literal["qint8", "quint8"], reduce_range: bool
):
    _, fp32 = text_model
    assert onnx.load(str(fp32)).opset_import[0].version >= 18  # a dynamo export, as training.export makes
    report = quantize_int8(fp32, tmp_path / "int8.onnx", weight_type=weight_type, reduce_range=reduce_range)

    assert report.preprocessed
    assert report.quantised_ops == {"Gather": 1, "MatMul/Gemm": 2}
    assert report.int8_bytes < report.fp32_bytes / 2.5  # the embedding table dominates and is now 1 byte/weight
    onnx.checker.check_model(str(tmp_path / "int8.onnx"))

    x, y = text_data(1024, seed=5)
    ids = x.numpy()
    for batch, seq in [(1, 16), (64, 16), (64, 3), (1, 40)]:  # dynamic batch and sequence survive
        assert run(tmp_path / "int8.onnx", np.resize(ids, (batch, seq))).shape == (batch, 2)

    feeds = [{"input_ids": ids[i : i + 64]} for i in range(0, len(ids), 64)]
    cmp = compare_outputs(fp32, tmp_path / "int8.onnx", feeds)
    assert cmp["rows"] == 1024
    assert cmp["agreement"] >= 0.95
    if weight_type == "quint8":  # U8U8 does not saturate on any x86 CPU, so its drift stays small everywhere
        assert cmp["max_abs_diff"] < 0.5
    labels = y.numpy()
    acc32, acc8 = (cmp["fp32_argmax"] == labels).mean(), (cmp["int8_argmax"] == labels).mean()
    assert acc8 >= acc32 - 0.02  # the accuracy budget for quantisation is about 1% relative
    print(
        f"text {weight_type} reduce_range={reduce_range}: {report.fp32_bytes} -> {report.int8_bytes} B, "
        f"agreement {cmp['agreement']}, max diff {cmp['max_abs_diff']:.4f}, acc {acc32:.4f} -> {acc8:.4f}"
    )


@pytest.mark.parametrize("weight_type", ["quint8", "qint8"])
def test_conv_model_int8_runs_and_agrees(
    conv_model: tuple[nn.Module, Path], tmp_path: Path, weight_type: Literal["qint8", "quint8"]
):
    _, fp32 = conv_model
    report = quantize_int8(fp32, tmp_path / "int8.onnx", op_types=ALL_OP_TYPES, weight_type=weight_type)
    assert report.quantised_ops == {"Conv": 2, "MatMul/Gemm": 1}  # ConvInteger has a CPU kernel in ORT 1.32
    assert report.int8_bytes < report.fp32_bytes

    x, y = image_data(512, seed=6)
    images = x.numpy()
    for batch in (1, 64):
        assert run(tmp_path / "int8.onnx", images[:batch]).shape == (batch, 2)
    cmp = compare_outputs(fp32, tmp_path / "int8.onnx", [{"input_ids": images[i : i + 64]} for i in range(0, 512, 64)])
    assert cmp["agreement"] >= 0.95
    print(
        f"conv {weight_type}: {report.fp32_bytes} -> {report.int8_bytes} B, agreement {cmp['agreement']}, "
        f"max diff {cmp['max_abs_diff']:.4f}, acc {(cmp['int8_argmax'] == y.numpy()).mean():.4f}"
    )


def test_convs_stay_fp32_by_default(conv_model: tuple[nn.Module, Path], tmp_path: Path):
    report = quantize_int8(conv_model[1], tmp_path / "int8.onnx")  # ConvInteger is slower than FP32 Conv on CPU
    assert report.quantised_ops == {"MatMul/Gemm": 1}
    ops = {node.op_type for node in onnx.load(str(tmp_path / "int8.onnx")).graph.node}
    assert "Conv" in ops and "ConvInteger" not in ops


def test_missing_and_invalid_files_raise_with_path(tmp_path: Path):
    missing = tmp_path / "absent.onnx"
    with pytest.raises(QuantizationError) as info:
        quantize_int8(missing, tmp_path / "out.onnx")
    assert info.value.path == missing and "no such" in info.value.reason

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf")
    with pytest.raises(QuantizationError) as info:
        quantize_int8(garbage, tmp_path / "out.onnx")
    assert info.value.path == garbage and "not a valid ONNX model" in info.value.reason
    assert not (tmp_path / "out.onnx").exists()

    with pytest.raises(QuantizationError, match="at least one batch"):
        compare_outputs(garbage, garbage, [])
