"""One training run: train from a dataset version, save the checkpoint, export to ONNX with a parity check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from datastore.loader import load
from training.config import TrainConfig
from training.export import ExportReport, export
from training.train import TrainResult, save_checkpoint, train

PARITY_SAMPLES = 512


def train_and_export(
    config: TrainConfig,
    out_dir: Path,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    export_model: bool = True,
) -> tuple[TrainResult, ExportReport | None]:
    """Write ``out_dir/checkpoint`` and, unless ``export_model`` is off, ``out_dir/export`` (model.onnx,
    vocab.json, manifest.json)."""
    data = load(config.dataset, repo=config.data_repo)
    result = train(config, data, on_epoch=on_epoch)
    save_checkpoint(result, out_dir / "checkpoint")
    if not export_model:
        return result, None
    report = export(result, out_dir / "export", [r["text"] for r in data.splits["val"][:PARITY_SAMPLES]])
    return result, report
