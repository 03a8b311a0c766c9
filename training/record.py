"""What a run leaves for people to read: ``metrics.jsonl`` (one row per epoch), TensorBoard scalars and
``training_curve.png``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"
CURVE_FILE = "training_curve.png"


class EpochLog:
    """Appends each epoch's row to a run folder's ``metrics.jsonl`` and its TensorBoard events."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.writer = _tensorboard(out_dir / "tensorboard")

    def add(self, row: dict[str, float]) -> None:
        """Record one epoch's metrics row (``epoch`` is the step, ``val_score`` shows as ``val/score``)."""
        with (self.out_dir / METRICS_FILE).open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key.replace("_", "/", 1), value, int(row["epoch"]))
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self.writer is not None:
            self.writer.close()


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; a trimmed install still trains
        log.warning("tensorboard is not installed: no TensorBoard event files")
        return None
    return SummaryWriter(str(folder))


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Training loss and validation loss/score per epoch, as a PNG."""
    if not history:
        return
    # Local: matplotlib takes a noticeable part of a second to import and only the end of a run draws. A bare
    # Figure (no pyplot) needs no backend, so a notebook's own backend is left as it was.
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    left.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train loss")
    if "val_loss" in history[0]:
        left.plot(epochs, [row["val_loss"] for row in history], marker="o", label="val loss")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [row["val_score"] for row in history], marker="o", color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel("validation score")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
