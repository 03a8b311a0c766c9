"""Export a trained classifier to ONNX and check it against PyTorch under ONNX Runtime."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.train import TrainResult

log = logging.getLogger(__name__)

# Common FP32 tolerances for ONNX Runtime vs PyTorch.
RTOL, ATOL = 1e-3, 1e-5
MODEL_FILE = "model.onnx"
VOCAB_FILE = "vocab.json"
EXPORT_INFO = "manifest.json"  # a partial manifest; the archive's manifest extends it


class ParityError(Exception):
    """The exported model's outputs differ from PyTorch's beyond tolerance."""

    def __init__(self, max_abs_diff: float) -> None:
        super().__init__(f"ONNX Runtime output differs from PyTorch by {max_abs_diff:.2e} (atol {ATOL}, rtol {RTOL})")
        self.max_abs_diff = max_abs_diff


@dataclass
class ExportReport:
    model_file: str
    exporter: str
    opset: int
    max_abs_diff: float
    parity_batches: int


def _export(model: torch.nn.Module, example: torch.Tensor, path: Path) -> str:
    """Try the dynamo exporter (torch's default); fall back to the TorchScript exporter if it fails."""
    batch, seq = torch.export.Dim("batch", min=1, max=4096), torch.export.Dim("seq", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                external_data=False,
                input_names=["input_ids"],
                output_names=["logits"],
                dynamic_shapes={"input_ids": {0: batch, 1: seq}},
                verbose=False,
            )
            return "dynamo"
        except Exception as exc:  # the dynamo exporter rejects some graphs; the legacy one is the fallback
            log.warning("dynamo ONNX export failed (%s); using the TorchScript exporter", exc)
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=["input_ids"],
                output_names=["logits"],
                dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
            )
            return "torchscript"


def check_parity(model: torch.nn.Module, onnx_path: Path, batches: list[np.ndarray]) -> float:
    """Max absolute difference between PyTorch and ONNX Runtime logits; raises ParityError past tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for ids in batches:
        with torch.no_grad():
            expected = model(torch.from_numpy(ids)).numpy()
        got = session.run(None, {"input_ids": ids})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
        if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
            raise ParityError(worst)
    return worst


def export(result: TrainResult, out_dir: Path, sample_texts: list[str]) -> ExportReport:
    """Write model.onnx, vocab.json and export.json into ``out_dir`` and check parity on sample texts."""
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    model = result.model.cpu().eval()
    max_len = result.config.max_len
    example = torch.from_numpy(result.vocab.encode_batch(sample_texts[:4] or ["example"], max_len))
    path = out_dir / MODEL_FILE
    exporter = _export(model, example, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    batches = [result.vocab.encode_batch(sample_texts[i : i + 64], max_len) for i in range(0, len(sample_texts), 64)]
    batches += [result.vocab.encode_batch(sample_texts[:1], max_len)]  # batch of one: the dynamic axis
    max_diff = check_parity(model, path, batches)
    result.vocab.save(out_dir / VOCAB_FILE)
    report = ExportReport(MODEL_FILE, exporter, opset, max_diff, len(batches))
    info = {
        "task": "text_classification",
        "labels": result.config.labels,
        "model_file": MODEL_FILE,
        "preprocessing": {"tokenizer": "datastore.text.tokenize", "vocab": VOCAB_FILE, "max_len": max_len},
        "signature": {
            "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", len(result.config.labels)]}],
        },
        "training_config": result.config.as_dict(),
        "history": result.history,
        "export": asdict(report) | {"rtol": RTOL, "atol": ATOL},
    }
    (out_dir / EXPORT_INFO).write_text(json.dumps(info, indent=2))
    return report


def read_export_info(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / EXPORT_INFO).read_text())
