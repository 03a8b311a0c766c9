"""Evaluation plots as PNG or SVG bytes: a reliability diagram and a confusion matrix.

Drawn on matplotlib ``Figure`` objects with the Agg canvas, never through ``pyplot``: no display, no global
figure state, safe in a worker thread. Output is byte-for-byte repeatable (no dates, fixed SVG ids), so
plots stored beside an evaluation can be checksummed like any other file.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evaluation.metrics import MetricsInputError

FORMATS = ("png", "svg")
_METADATA = {"png": {"Software": None}, "svg": {"Date": None}}
_ANNOTATE_UP_TO = 30  # labels; beyond that the cell counts are unreadable
_TITLE_SIZE = 11  # points
_CHAR_WIDTH = 0.6  # of the font size: a generous average for DejaVu Sans, so a wrapped line fits


def reliability_diagram(
    calibration: Mapping[str, Any], path_or_format: str | Path = "png", *, title: str = "Reliability diagram"
) -> bytes:
    """Accuracy against confidence per bin (above) and the number of items per bin (below).

    Args:
        calibration: a dict from ``evaluation.metrics.calibration``.
        path_or_format: ``"png"`` or ``"svg"`` to get the bytes only, or a path ending in .png or .svg to
            also write them there.
        title: the figure title; the ECE is appended.

    Returns:
        The image as PNG or SVG bytes.
    """
    fmt, path = _target(path_or_format)
    return _save(reliability_figure(calibration, title=title), fmt, path)


def reliability_figure(calibration: Mapping[str, Any], *, title: str = "Reliability diagram") -> Figure:
    """The figure ``reliability_diagram`` saves (its title wrapped to the figure's width)."""
    rows = calibration.get("rows") if isinstance(calibration, Mapping) else None
    if not isinstance(rows, list) or not rows or "ece" not in calibration:
        raise MetricsInputError("calibration", "must be a dict from evaluation.metrics.calibration (rows, ece)")
    try:
        lower = np.array([row["lower"] for row in rows], dtype=float)
        width = np.array([row["upper"] for row in rows], dtype=float) - lower
        count = np.array([row["count"] for row in rows], dtype=float)
        filled = count > 0
        accuracy = np.array([row["accuracy"] if row["count"] else 0.0 for row in rows], dtype=float)
        confidence = np.array([row["confidence"] if row["count"] else 0.0 for row in rows], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise MetricsInputError("calibration", "has a bin row without numeric lower, upper, count, ...") from None

    fig = _figure((5, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.bar(lower[filled], accuracy[filled], width=width[filled], align="edge", edgecolor="black", label="accuracy")
    # The gap between a bin's accuracy and its mean confidence, which the ECE weights by the bin's share.
    top.bar(
        lower[filled],
        confidence[filled] - accuracy[filled],
        bottom=accuracy[filled],
        width=width[filled],
        align="edge",
        color="tab:red",
        alpha=0.3,
        label="gap to mean confidence",
    )
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    _title(fig, f"{title} (ECE {calibration['ece']:.3f})")
    top.legend(loc="upper left", fontsize="small")
    bottom.bar(lower, count, width=width, align="edge", edgecolor="black", color="tab:grey")
    bottom.set(xlabel="confidence", ylabel="items")
    return fig


def confusion_matrix_plot(
    confusion: Mapping[str, Any],
    path_or_format: str | Path = "png",
    *,
    normalize: bool = False,
    title: str = "Confusion matrix",
) -> bytes:
    """The confusion matrix as a heat map: rows are true labels, columns predictions.

    Args:
        confusion: ``{"labels", "matrix"}``, as ``classification_metrics`` returns under ``confusion_matrix``.
        path_or_format: ``"png"`` or ``"svg"``, or a path ending in .png or .svg to also write the image.
        normalize: show each row as shares of its true label (rows with no items stay 0).
        title: the figure title.

    Returns:
        The image as PNG or SVG bytes.
    """
    fmt, path = _target(path_or_format)
    return _save(confusion_figure(confusion, normalize=normalize, title=title), fmt, path)


def confusion_figure(
    confusion: Mapping[str, Any], *, normalize: bool = False, title: str = "Confusion matrix"
) -> Figure:
    """The figure ``confusion_matrix_plot`` saves (its title wrapped to the figure's width)."""
    labels = confusion.get("labels") if isinstance(confusion, Mapping) else None
    try:
        matrix = np.asarray(confusion["matrix"], dtype=float)  # (L, L)
    except (KeyError, TypeError, ValueError):
        raise MetricsInputError("confusion", "must be a dict with labels and a numeric matrix") from None
    if not isinstance(labels, list) or not labels or matrix.shape != (len(labels), len(labels)):
        raise MetricsInputError("confusion", f"needs a square matrix with one row per label; got {matrix.shape}")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise MetricsInputError("confusion", "matrix must hold non-negative counts")
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)

    side = min(max(4.0, 0.45 * len(labels) + 2.5), 30.0)
    fig = _figure((side, side))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(label) for label in labels])
    ax.set(xlabel="predicted", ylabel="true")
    _title(fig, title)
    if len(labels) <= _ANNOTATE_UP_TO:
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            ax.text(j, i, text, ha="center", va="center", color="white" if value > threshold else "black")
    return fig


def _target(path_or_format: str | Path) -> tuple[str, Path | None]:
    """(format, path or None): a bare format name gives bytes only, a path's suffix names the format."""
    if isinstance(path_or_format, str) and path_or_format.lower() in FORMATS:
        return path_or_format.lower(), None
    if not isinstance(path_or_format, str | Path):
        raise MetricsInputError(
            "path_or_format", f"must be 'png', 'svg' or a path, not {type(path_or_format).__name__}"
        )
    path = Path(path_or_format)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MetricsInputError(
            "path_or_format",
            f"unknown plot format {str(path_or_format)!r}: give 'png' or 'svg', or a .png or .svg path",
        )
    return fmt, path


def _title(fig: Figure, title: str) -> None:
    """The figure's title, wrapped to its width: an axes title longer than the axes is clipped at the edges."""
    width_in = fig.get_size_inches()[0] * 0.92  # the constrained layout keeps a small margin
    columns = max(int(width_in * 72 / (_TITLE_SIZE * _CHAR_WIDTH)), 12)
    fig.suptitle(textwrap.fill(title, columns, break_long_words=True), fontsize=_TITLE_SIZE)


def _figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, fmt: str, path: Path | None) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "fsml"}):  # fixed SVG element ids: repeatable bytes
        fig.savefig(buffer, format=fmt, dpi=100, metadata=_METADATA[fmt])
    data = buffer.getvalue()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data
