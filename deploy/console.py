"""The terminal output shared by the CLI and the demo.

Results go to stdout (``console``: lines are never wrapped, so a pipe or a test reads each whole); progress bars
and warnings go to stderr (``err_console``), and progress bars only when stderr is a terminal.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console(soft_wrap=True)
err_console = Console(stderr=True)


def progress(enabled: bool = True) -> Progress:
    """A progress bar on stderr with a description, counts and elapsed time.

    It draws nothing when stderr is not a terminal (a pipe, a log, a test) or when ``enabled`` is off (a command
    printing ``--json``).
    """
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not (enabled and err_console.is_terminal),
    )


def say(line: str, style: str = "") -> None:
    """One line as written: no rich markup from the data ("[staging]" is text here), no wrapping."""
    text = escape(line)
    console.print(f"[{style}]{text}[/{style}]" if style else text, soft_wrap=True)


def warn(message: str) -> None:
    """A warning for the user, on stderr (stdout stays the command's result)."""
    err_console.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout (plain writes: no markup, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_json_line(data: Any) -> None:
    """Write one JSON Lines record on stdout (one object per line, whatever its length) and flush it, so a reader
    sees each as it comes."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[str] = ()) -> None:
    """A table on stdout; ``numeric`` columns are right-aligned. Off a terminal it is as wide as its widest row,
    so a pipe gets whole cells."""
    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for column in table.columns:
        if column.header in numeric:
            column.justify = "right"
    for row in rows:
        table.add_row(*(escape("-" if cell is None else str(cell)) for cell in row))
    if console.is_terminal:
        console.print(table, soft_wrap=False)
        return
    wide = console.options.update(width=10_000)  # measured without the 80 columns a pipe is given
    Console(width=Measurement.get(console, wide, table).maximum).print(table, soft_wrap=False)


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
