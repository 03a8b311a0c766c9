"""The terminal output shared by the CLI and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()


def progress() -> Progress:
    """A progress bar with a description, counts and elapsed time."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def train_with_progress(
    config: Any, run_dir: Path, label: str = "training", export: bool = True, resume: bool = False
) -> Any:
    """Train and export (training.run.train_and_export) with one bar step per epoch.

    Returns (train result, export report or None when ``export`` is off)."""
    # local: training imports torch (over a second), and every ``fsml`` command imports this module
    from training.run import train_and_export

    with progress() as bar:
        task = bar.add_task(label, total=config.epochs)

        def on_epoch(row: dict[str, float]) -> None:
            bar.update(task, completed=row["epoch"], description=f"{label} (val score {row['val_score']:.3f})")

        return train_and_export(config, run_dir, on_epoch=on_epoch, export_model=export, resume=resume)
