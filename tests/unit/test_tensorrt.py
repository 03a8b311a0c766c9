"""The TensorRT path: the unavailable branch runs everywhere; engine tests need TensorRT and a CUDA GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from modelpack.backends.tensorrt import EngineBuildError, TensorRTRuntime, TensorRTUnavailable, tensorrt_available
from modelpack.backends.tensorrt_build import Shape, build_engine
from tests.tiny_models import export, text_data, trained_bag_classifier

AVAILABLE, REASON = tensorrt_available()
SHAPES: dict[str, tuple[Shape, Shape, Shape]] = {"input_ids": ((1, 1), (32, 16), (64, 64))}


def test_unavailable_is_reported_never_pretended(tmp_path: Path):
    if AVAILABLE:
        pytest.skip(f"TensorRT is usable here ({REASON}), so the unavailable path cannot be exercised")
    ok, reason = tensorrt_available()
    assert ok is False and reason  # a reason a person can act on
    with pytest.raises(TensorRTUnavailable) as info:
        build_engine(tmp_path / "model.onnx", tmp_path / "model.plan", SHAPES)
    assert info.value.reason == reason
    assert not (tmp_path / "model.plan").exists()
    with pytest.raises(TensorRTUnavailable):
        TensorRTRuntime(tmp_path / "model.plan")


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(trained_bag_classifier(), text_data(2, seed=1)[0], tmp_path_factory.mktemp("trt") / "model.onnx")


@pytest.mark.tensorrt
@pytest.mark.skipif(not AVAILABLE, reason=REASON)
def test_engine_matches_onnx_runtime_at_batch_1_and_64(onnx_model: Path, tmp_path: Path):
    report = build_engine(onnx_model, tmp_path / "model.plan", SHAPES)
    assert report.plan_bytes > 0 and report.tensorrt_version and report.gpu
    runtime = TensorRTRuntime(tmp_path / "model.plan")
    assert runtime.inputs == ["input_ids"] and runtime.outputs == ["logits"]
    session = ort.InferenceSession(str(onnx_model), providers=["CPUExecutionProvider"])
    ids = text_data(64, seed=9)[0].numpy()
    for batch in (1, 64):
        want = session.run(None, {"input_ids": ids[:batch]})[0]
        got = runtime(input_ids=ids[:batch])["logits"].float().cpu().numpy()
        assert got.shape == want.shape == (batch, 2)
        tol = 1e-2 if report.fp16 else 1e-4  # FP16 kernels: a few ulps of half precision on logits of ~10
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        assert (got.argmax(-1) == want.argmax(-1)).all()
    with pytest.raises(ValueError, match="outside"):
        runtime(input_ids=np.ones((65, 8), dtype=np.int64))  # past the profile's max batch


@pytest.mark.tensorrt
@pytest.mark.skipif(not AVAILABLE, reason=REASON)
def test_parser_errors_are_all_reported(tmp_path: Path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf")
    with pytest.raises(EngineBuildError) as info:
        build_engine(garbage, tmp_path / "model.plan", SHAPES)
    assert info.value.path == garbage and info.value.errors
    with pytest.raises(EngineBuildError, match="no such ONNX file"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "model.plan", SHAPES)
