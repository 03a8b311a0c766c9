"""The serving runtime's backends agree: ONNX Runtime (FP32 and INT8) and the exported PyTorch program
(CPU here; CUDA, FP16 and torch.compile on a GPU machine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modelpack.inputs import InputError
from modelpack.runtime import load_runtime
from tests.helpers import corpus_version
from training.config import ModelConfig, TrainConfig
from training.export import export
from training.train import train


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    data = corpus_version(600)
    result = train(TrainConfig(dataset="corpus", model=ModelConfig(name="cnn"), epochs=2, min_freq=1), data)
    out = tmp_path_factory.mktemp("backends") / "export"
    export(result, out, data)
    return out, [r["text"] for r in data.splits["test"]]


def test_every_backend_gives_the_same_predictions(export_dir) -> None:
    out, texts = export_dir
    reference = load_runtime(out).logits(texts)  # ONNX Runtime, FP32
    program = load_runtime(out, "torch").logits(texts)
    assert np.allclose(program, reference, rtol=1e-3, atol=1e-5)
    for backend, options, floor in (("onnxruntime-int8", {}, 0.9), ("torch", {"fp16": True}, 0.95)):
        got = load_runtime(out, backend, **options).logits(texts)
        agreement = float((got.argmax(1) == reference.argmax(1)).mean())
        assert agreement >= floor, (backend, options, agreement)
        assert got.dtype == np.float32
        assert not np.array_equal(got, reference)  # it did run in lower precision


def test_backend_errors_are_clear(export_dir, tmp_path: Path) -> None:
    out, _ = export_dir
    with pytest.raises(InputError, match="unknown backend 'tensorflow'"):
        load_runtime(out, "tensorflow")
    from modelpack.backends.tensorrt import tensorrt_available

    if not tensorrt_available()[0]:  # the export said why there is no plan, and the runtime refuses plainly
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["export"]["tensorrt"] == f"skipped: {tensorrt_available()[1]}"
        with pytest.raises(InputError, match="no tensorrt model for the tensorrt backend"):
            load_runtime(out, "tensorrt")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            load_runtime(out, "torch", device="cuda")


@pytest.mark.slow
def test_compiled_program_matches_on_cpu(export_dir) -> None:
    out, texts = export_dir
    reference = load_runtime(out).logits(texts[:64])
    compiled = load_runtime(out, "torch", compile=True)
    assert np.allclose(compiled.logits(texts[:64]), reference, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_fp16_and_compile_agree_with_onnx_runtime(export_dir) -> None:
    out, texts = export_dir
    reference = load_runtime(out).logits(texts)
    for options in ({"fp16": False}, {"fp16": True}, {"fp16": True, "compile": True}):
        got = load_runtime(out, "torch", device="cuda", **options).logits(texts)
        assert float((got.argmax(1) == reference.argmax(1)).mean()) >= 0.98, options


def test_evaluation_scores_image_models_and_refuses_what_it_cannot_score(tmp_path: Path) -> None:
    from evaluation.evaluate import EvaluationError, evaluate
    from tests.image_helpers import mnist_version

    data = mnist_version(500)
    config = TrainConfig(
        task="image_classification", model=ModelConfig(name="cnn"), dataset="mnist", epochs=6, lr=5e-3, batch_size=32
    )
    result = train(config, data)
    export(result, tmp_path / "image", data, int8=False)
    scored = evaluate(tmp_path / "image", data=data, split="test")
    assert scored["metrics"]["n"] == len(data.splits["test"]) and scored["metrics"]["accuracy"] > 0.3  # chance: 0.1

    assert set(scored["metrics"]["top_k"]) == {"top_1", "top_3", "top_5"}
    assert scored["metrics"]["top_k"]["top_1"] == pytest.approx(scored["metrics"]["accuracy"])
    assert scored["metrics"]["top_k"]["top_5"] >= scored["metrics"]["top_k"]["top_3"] >= scored["metrics"]["accuracy"]
    assert 0 <= scored["metrics"]["calibration"]["ece"] <= 1
    case = scored["predictions"][0]
    assert (
        case["image"]
        and set(case["scores"]) == set(data.labels)
        and case["correct"] == (case["label"] == case["predicted"])
    )
    with pytest.raises(EvaluationError, match="no records in split 'dev'"):
        evaluate(tmp_path / "image", data=data, split="dev")
    manifest = tmp_path / "image" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"task": "image_classification"', '"task": "spans"'))
    with pytest.raises(EvaluationError, match="is a image_classification version; the model is a spans model"):
        evaluate(tmp_path / "image", data=data, split="test")


def test_a_worker_takes_the_first_backend_that_loads(export_dir, tmp_path: Path) -> None:
    """``auto``: no plan here, so ONNX Runtime; an ONNX file the library refuses passes the model to the PyTorch
    program, with the reason kept; a named backend is used as asked or refused with its reason."""
    import shutil

    from modelpack.runtime import load_serving_runtime

    out, texts = export_dir
    runtime = load_serving_runtime(out)
    assert runtime.backend_name == "onnxruntime"
    assert runtime.passed_over[0].startswith("tensorrt: ")  # no plan in this archive, or no TensorRT here
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    fallback = load_serving_runtime(broken)
    assert fallback.backend_name == "torch"
    assert any(r.startswith("onnxruntime: ") for r in fallback.passed_over), fallback.passed_over
    assert [r.split(":")[0] for r in fallback.load_errors] == ["onnxruntime"], "absent TensorRT is no load error"
    assert np.allclose(fallback.logits(texts), runtime.logits(texts), rtol=1e-3, atol=1e-5)
    assert load_serving_runtime(out, "onnxruntime-int8").backend_name == "onnxruntime-int8"
    with pytest.raises(InputError, match="unknown serving backend 'tflite'"):
        load_serving_runtime(out, "tflite")
    (broken / "model.pt2").write_bytes(b"not a program either")
    with pytest.raises(InputError, match="no backend can load this model: tensorrt: .*; onnxruntime: .*; torch: "):
        load_serving_runtime(broken)
