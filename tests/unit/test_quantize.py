"""Dynamic INT8 quantisation of small trained models exported by torch's dynamo exporter."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from training.export import export_onnx
from training.quantize import ALL_OP_TYPES, QuantizationError, compare_outputs, quantize_int8

VOCAB, SIGNAL_TOKEN = 200, 5


class BagClassifier(nn.Module):
    """Embedding, masked mean over tokens (0 is padding), MLP head: the shape of the platform's text model."""

    def __init__(self, vocab: int = VOCAB, dim: int = 48) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != 0).unsqueeze(-1).float()  # (B, T, 1)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, C)
        return self.out(torch.relu(self.hidden(pooled)))  # (B, 2)


class TinyConvNet(nn.Module):
    """Two convs and a linear head over 1x12x12 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16 * 3 * 3, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # named like the text model's input
        x = torch.max_pool2d(torch.relu(self.conv1(input_ids)), 2)  # (B, 8, 6, 6)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)  # (B, 16, 3, 3)
        return self.head(x.flatten(1))


def text_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (with padding) whose label is whether SIGNAL_TOKEN occurs."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, VOCAB, (n, 16), generator=g)
    label = torch.rand(n, generator=g) < 0.5
    pos = torch.randint(0, 8, (n,), generator=g)  # within the shortest sequence, so padding never hides it
    ids[label, pos[label]] = SIGNAL_TOKEN
    lengths = torch.randint(8, 17, (n,), generator=g)
    ids[torch.arange(16).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return ids, label.long()


def image_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images whose label is whether a bright 3x3 patch sits in the top or bottom half."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 12, 12, generator=g) * 0.5
    label = (torch.rand(n, generator=g) < 0.5).long()
    cols = torch.randint(0, 10, (n,), generator=g)
    rows = torch.randint(0, 3, (n,), generator=g) + 6 * label
    for i in range(n):
        x[i, 0, rows[i] : rows[i] + 3, cols[i] : cols[i] + 3] += 2.0
    return x, label


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> nn.Module:
    """A short real training run (Adam, batch 64).

    On one thread: these ops are tiny, and on a busy 2-core machine two OpenMP threads wait on each other at
    every barrier (measured 15 s for this run on 2 threads against 0.2 s on 1).
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for step in range(steps):
            idx = torch.arange(step * 64, step * 64 + 64) % len(x)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((model(x).argmax(-1) == y).float().mean())


def export(model: nn.Module, example: torch.Tensor, path: Path, seq_dynamic: bool = True) -> Path:
    """Export as training.export does (dynamo, opset 18+, dynamic batch and sequence)."""
    assert export_onnx(model, example, path, "input_ids", seq_axis=seq_dynamic) == "dynamo"
    return path


@functools.cache
def _trained_bag_classifier() -> nn.Module:
    x, y = text_data(2048, seed=1)
    return train(BagClassifier(), x, y)


def trained_bag_classifier() -> nn.Module:
    """A BagClassifier trained once per process (test_prune uses it too); each caller gets its own copy."""
    model = copy.deepcopy(_trained_bag_classifier())
    assert accuracy(model, *text_data(512, seed=2)) > 0.9  # it learned the rule, so agreement means something
    return model


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
