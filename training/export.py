"""Export a trained model to ONNX (dynamic batch, and sequence for text), check it against PyTorch under ONNX
Runtime, and add a dynamic INT8 copy with its score change. Every task type goes through the same path."""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

import modelpack.text
from datastore.loader import LoadedVersion
from modelpack.runtime import TEXT_CODE_FILE
from training.checkpoint import TrainResult
from training.quantize import QuantizationError, quantize_int8
from training.tasks import Task

log = logging.getLogger(__name__)

# Common FP32 tolerances for ONNX Runtime vs PyTorch.
RTOL, ATOL = 1e-3, 1e-5
FP16_RTOL, FP16_ATOL = 1e-2, 1e-2  # TensorRT's FP16 engine against FP32 ONNX Runtime (unverified here)
MODEL_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
PLAN_FILE = "model.plan"  # TensorRT FP16 engine, built only where TensorRT and a GPU are present
PROGRAM_FILE = "model.pt2"  # the torch.export program: PyTorch serving (CUDA, FP16) without training code
VOCAB_FILE = "vocab.json"
EXPORT_INFO = "manifest.json"  # a partial manifest; the archive's manifest extends it
PARITY_RECORDS = 512


class ParityError(Exception):
    """The exported model's outputs differ from PyTorch's beyond tolerance."""

    def __init__(self, max_abs_diff: float) -> None:
        super().__init__(f"ONNX Runtime output differs from PyTorch by {max_abs_diff:.2e} (atol {ATOL}, rtol {RTOL})")
        self.max_abs_diff = max_abs_diff


class ExportError(Exception):
    """A model that cannot be exported from this data; ``reason`` says why."""

    def __init__(self, dataset: str, split: str, reason: str) -> None:
        super().__init__(reason)
        self.dataset, self.split, self.reason = dataset, split, reason


@dataclass
class ExportReport:
    model_file: str
    exporter: str
    opset: int
    max_abs_diff: float
    parity_batches: int
    score_fp32: float | None = None  # the task's score on the parity records, through ONNX Runtime
    int8_file: str | None = None
    score_int8: float | None = None
    int8_agreement: float | None = None  # share of predictions INT8 and FP32 agree on
    size_fp32: int = 0
    size_int8: int = 0
    tensorrt: str = ""  # the plan file, or why there is none ("skipped: ...")


def torch_logs_to_logging() -> None:
    """Hand torch's log records to the standard logging tree.

    torch gives its loggers stream handlers of their own that write to stderr and do not propagate, so the ONNX
    exporter's notes ("torchvision is not installed. Skipping torchvision::nms", four of them per export) reach
    the terminal whatever the application configured. Without those handlers the records propagate: the
    application's handlers decide (the ``fsml`` command logs them to its log file and shows them with -v), and
    with no handler configured Python still prints warnings to stderr.
    """
    for name in [n for n in logging.root.manager.loggerDict if n == "torch" or n.startswith("torch.")]:
        logger = logging.getLogger(name)
        # torch's own: a plain stream handler with torch's formatter (an application's handlers are left alone)
        own = [
            h
            for h in logger.handlers
            if type(h) is logging.StreamHandler and type(h.formatter).__module__.startswith("torch.")
        ]
        for handler in own:
            logger.removeHandler(handler)
        if own:  # loggers torch keeps to itself (its artifact logs, off by default) stay as they are
            logger.propagate = True


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, seq_axis: bool) -> str:
    """Export with a dynamic batch axis (and sequence axis when ``seq_axis``); returns the exporter used.

    Tries the dynamo exporter (torch's default, weights inside the file); falls back to the TorchScript
    exporter if it fails. The example must have size >= 2 on each dynamic axis: a size-1 axis is baked
    into the graph as a constant.
    """
    dims = _dims(seq_axis)
    torch_logs_to_logging()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                external_data=False,
                input_names=[input_name],
                output_names=["logits"],
                dynamic_shapes={input_name: dims},
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
                input_names=[input_name],
                output_names=["logits"],
                dynamic_axes={input_name: {0: "batch", 1: "seq"} if seq_axis else {0: "batch"}, "logits": {0: "batch"}},
            )
            return "torchscript"


def _dims(seq_axis: bool) -> dict[int, Any]:
    dims = {0: torch.export.Dim("batch", min=1, max=4096)}
    if seq_axis:
        dims[1] = torch.export.Dim("seq", min=1, max=4096)
    return dims


def save_program(model: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str, seq_axis: bool) -> None:
    """Save the model as a ``torch.export`` program with the same dynamic axes as the ONNX file; it loads
    with ``torch.export.load(path).module()`` and runs on any device, with no import of training code."""
    program = torch.export.export(model, (example,), dynamic_shapes={input_name: _dims(seq_axis)})
    torch.export.save(program, str(path))


def _session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def check_parity(model: torch.nn.Module, onnx_path: Path, batches: list[np.ndarray], input_name: str) -> float:
    """Max absolute difference between PyTorch and ONNX Runtime logits; raises ParityError past tolerance."""
    session = _session(onnx_path)
    worst = 0.0
    for inputs in batches:
        with torch.no_grad():
            expected = model(torch.from_numpy(inputs)).numpy()
        got = session.run(None, {input_name: inputs})[0]
        worst = max(worst, float(np.abs(expected - got).max()))
        if not np.allclose(got, expected, rtol=RTOL, atol=ATOL):
            raise ParityError(worst)
    return worst


def _scores(path: Path, task: Task, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, list[np.ndarray]]:
    """The task's score on labelled batches through ONNX Runtime, and the predictions."""
    session = _session(path)
    predicted = [task.predict(torch.from_numpy(session.run(None, {task.input_name(): x})[0])) for x, _ in batches]
    return task.metrics(predicted, [y for _, y in batches])["score"], predicted


def export(
    result: TrainResult, out_dir: Path, data: LoadedVersion, split: str = "val", int8: bool = True
) -> ExportReport:
    """Write model.onnx (and model.int8.onnx), vocab.json and manifest.json into ``out_dir``.

    Parity with PyTorch is checked on up to PARITY_RECORDS records of ``split`` in batches of 64, and on a
    batch of one (the dynamic axis); the INT8 copy is scored against the FP32 model on the same records. With
    ``split`` empty, up to 64 records of the other loaded splits stand in.

    Raises:
        ExportError: no records to trace and check the model with (``split`` and every other loaded split empty).
        ParityError: ONNX Runtime's outputs differ from PyTorch's beyond the tolerance.
    """
    task = result.task
    out_dir.mkdir(parents=True, exist_ok=True)
    model = result.model.cpu().eval()
    if fold := getattr(model, "fold_subwords", None):
        fold()  # per-token subword tables: the exported graph gathers one row per token
    records = data.splits.get(split, [])[:PARITY_RECORDS] or [r for rows in data.splits.values() for r in rows][:64]
    if not records:  # the example input, the parity batches and the INT8 score all come from these records
        raise ExportError(
            data.name,
            split,
            f"dataset version {data.name} has no records in its {split} split: the export traces the model on them "
            f"and checks ONNX Runtime against PyTorch with them; make a version with a {split} split (fsml dataset "
            "snapshot PROJECT --name NAME --val-pct 10) and train on it",
        )
    batches = [task.batch(records[i : i + 64], data) for i in range(0, len(records), 64)]
    labelled = [(x.numpy(), y.numpy()) for x, y in batches]
    inputs = [x for x, _ in labelled] + [labelled[0][0][:1]]  # and a batch of one: the dynamic axis
    path = out_dir / MODEL_FILE
    # A dynamic axis of size 1 in the example is baked into the graph as a constant: make both at least 2.
    example = inputs[0][:4] if len(inputs[0]) >= 2 else np.concatenate([inputs[0], inputs[0]])
    if example.ndim == 2 and example.shape[1] < 2:
        example = np.pad(example, ((0, 0), (0, 1)))  # one more padding token changes no output
    exporter = export_onnx(model, torch.from_numpy(example), path, task.input_name(), example.ndim == 2)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    max_diff = check_parity(model, path, inputs, task.input_name())
    report = ExportReport(MODEL_FILE, exporter, opset, max_diff, len(inputs), size_fp32=path.stat().st_size)
    save_program(model, torch.from_numpy(example), out_dir / PROGRAM_FILE, task.input_name(), example.ndim == 2)
    report.score_fp32, fp32_pred = _scores(path, task, labelled)
    if int8:
        _add_int8(report, out_dir, task, labelled, fp32_pred)
    report.tensorrt = _add_plan(out_dir, task, result, inputs[0])
    if result.vocab is not None:
        result.vocab.save(out_dir / VOCAB_FILE)
        # The text pre- and post-processing code itself (standard library and NumPy only), so the model keeps
        # the tokeniser it was trained with whatever the installed fsml's becomes.
        shutil.copyfile(modelpack.text.__file__, out_dir / TEXT_CODE_FILE)
    info = {
        "task": result.config.task,
        "labels": result.config.labels,
        "outputs": task.outputs,
        "model_file": MODEL_FILE,
        "model_files": {
            "fp32": MODEL_FILE,
            "torch": PROGRAM_FILE,
            **({"int8": INT8_FILE} if report.int8_file else {}),
            **({"tensorrt": PLAN_FILE} if report.tensorrt == PLAN_FILE else {}),
        },
        "preprocessing": task.preprocessing(),
        "signature": signature(task, result),
        "training_config": result.config.as_dict(),
        "history": result.history,
        "export": asdict(report) | {"rtol": RTOL, "atol": ATOL, "parity_split": split},
        "data_provenance": data_provenance(data),
    }
    (out_dir / EXPORT_INFO).write_text(json.dumps(info, indent=2))
    return report


def _add_int8(
    report: ExportReport,
    out_dir: Path,
    task: Task,
    labelled: list[tuple[np.ndarray, np.ndarray]],
    fp32_pred: list[np.ndarray],
) -> None:
    try:
        quantize_int8(out_dir / MODEL_FILE, out_dir / INT8_FILE)
    except QuantizationError as exc:  # the FP32 export stands on its own; say why there is no INT8 copy
        log.warning("no INT8 model: %s", exc)
        return
    report.int8_file, report.size_int8 = INT8_FILE, (out_dir / INT8_FILE).stat().st_size
    report.score_int8, int8_pred = _scores(out_dir / INT8_FILE, task, labelled)
    same = sum(int((a == b).all(axis=tuple(range(1, a.ndim))).sum()) for a, b in zip(fp32_pred, int8_pred, strict=True))
    report.int8_agreement = same / max(sum(len(p) for p in fp32_pred), 1)


def _add_plan(out_dir: Path, task: Task, result: TrainResult, example: np.ndarray) -> str:
    """Build the TensorRT FP16 plan when TensorRT and a GPU are here; otherwise say why not, never pretend."""
    # Local: TensorRT is reached only on GPU machines, and its modules would weigh on every export's import.
    from modelpack.backends.tensorrt import EngineBuildError, TensorRTRuntime, tensorrt_available
    from modelpack.backends.tensorrt_build import build_engine

    ok, reason = tensorrt_available()
    if not ok:
        log.info("TensorRT step skipped: %s", reason)
        return f"skipped: {reason}"
    rest = tuple(example.shape[1:]) if task.input_name() == "pixels" else (result.config.model.max_len,)
    low = (1, *example.shape[1:]) if task.input_name() == "pixels" else (1, 1)
    shapes = {task.input_name(): (low, (64, *rest), (256, *rest))}
    try:
        build_engine(out_dir / MODEL_FILE, out_dir / PLAN_FILE, shapes, fp16=True)
    except EngineBuildError as exc:
        log.warning("no TensorRT plan: %s", exc)
        return f"skipped: {exc}"
    engine = TensorRTRuntime(out_dir / PLAN_FILE)
    got = engine(**{task.input_name(): example})[engine.outputs[0]].float().cpu().numpy()
    expected = _session(out_dir / MODEL_FILE).run(None, {task.input_name(): example})[0]
    if not np.allclose(got, expected, rtol=FP16_RTOL, atol=FP16_ATOL):  # FP16 kernels: a looser bound
        (out_dir / PLAN_FILE).unlink()
        raise ParityError(float(np.abs(got - expected).max()))
    return PLAN_FILE


def signature(task: Task, result: TrainResult) -> dict[str, Any]:
    n = len(task.outputs)
    if task.input_name() == "pixels":
        c, size = result.config.model.image_channels, result.config.image_size
        inputs = [{"name": "pixels", "dtype": "float32", "shape": ["batch", c, size, size]}]
        return {"inputs": inputs, "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", n]}]}
    out_shape = ["batch", "seq", n] if result.config.task == "spans" else ["batch", n]
    return {
        "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"]}],
        "outputs": [{"name": "logits", "dtype": "float32", "shape": out_shape}],
    }


def data_provenance(data: LoadedVersion) -> dict[str, Any]:
    """What the model was trained on and under which terms, copied from the dataset version's manifest (read
    through the loader): its sources with licence notes, crawl jobs and record counts, and the guideline versions
    of its labels. ``recorded`` is false for a version whose manifest lists no provenance."""
    provenance = data.manifest.get("provenance")
    return {
        "dataset_version": data.name,
        "recorded": provenance is not None,
        "sources": (provenance or {}).get("sources", []),
        "guideline_versions": (provenance or {}).get("guideline_versions", []),
    }


def read_export_info(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / EXPORT_INFO).read_text())
