"""One training run: train from a dataset version into a run folder, then export to ONNX with parity checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from datastore.loader import load
from training.checkpoint import TrainResult
from training.config import TrainConfig
from training.distributed import init_distributed
from training.export import ExportReport, export
from training.train import train


def train_and_export(
    config: TrainConfig,
    out_dir: Path,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    export_model: bool = True,
    resume: bool = False,
) -> tuple[TrainResult, ExportReport | None]:
    """Write ``out_dir/checkpoint`` (and the run's state, metrics and plot) and, unless ``export_model`` is
    off, ``out_dir/export`` (model.onnx, model.int8.onnx, vocab.json, manifest.json). Under torchrun only
    rank 0 exports."""
    data = load(config.dataset, repo=config.data_repo, images=config.task == "image_classification")
    result = train(config, data, on_epoch=on_epoch, out_dir=out_dir, resume=resume)
    if not export_model or not init_distributed(config.device).main:
        return result, None
    return result, export(result, out_dir / "export", data)
