"""The scikit-learn baselines a trained model must beat, measured on the same dataset version and split.

Text: TF-IDF over word unigrams and bigrams with logistic regression. Images: logistic regression on raw
pixels. Both tune C lightly on the val split, keep the model trained on train with the best val macro F1
and score it on the asked split; ``majority_baseline`` gives the floor. Metrics are computed over the
version's label list, as ``evaluation.metrics`` computes them, so the numbers sit beside a model's.

    >>> from training.baselines import text_baseline
    >>> text_baseline(load("sentiment-v1", repo=".fsml/data")).accuracy
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

from datastore.loader import LoadedVersion

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0)
TEXT_TASKS = ("text_classification",)
IMAGE_TASKS = ("image_classification",)


class BaselineError(ValueError):
    """A baseline cannot be measured on this version and split; ``reason`` says why."""

    def __init__(self, version: str, split: str, reason: str) -> None:
        super().__init__(f"baseline on {version!r}, split {split!r}: {reason}")
        self.version, self.split, self.reason = version, split, reason


@dataclass
class BaselineResult:
    """One baseline's score on one split, with what it was fitted on and how long fitting took."""

    name: str
    split: str
    accuracy: float
    macro_f1: float
    n_train: int
    n_eval: int
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _labels(version: LoadedVersion, split: str, task_types: Sequence[str]) -> tuple[list[str], list[str]]:
    """Train labels and ``split`` labels, after checking the version suits a single-label baseline."""
    if task_types and version.task_type not in task_types:
        raise BaselineError(
            version.name, split, f"task type {version.task_type!r}; this baseline takes {', '.join(task_types)}"
        )
    if split not in version.splits:
        raise BaselineError(version.name, split, f"no such split; the version has {', '.join(version.splits)}")
    y: dict[str, list[str]] = {}
    for part in ("train", split):
        rows = version.splits.get(part, [])
        if not rows:
            raise BaselineError(version.name, split, f"the {part} split is empty")
        for row in rows:
            if not isinstance(row["label"], str):
                # multi_label and spans hold lists: one-label-per-record classifiers do not apply
                raise BaselineError(
                    version.name,
                    split,
                    f"record {row['id']} has a {type(row['label']).__name__} label; "
                    "multi-label and span versions are out of scope (single-label classification only)",
                )
        y[part] = [row["label"] for row in rows]
    if len(set(y["train"])) < 2:
        raise BaselineError(version.name, split, "the train split holds fewer than two labels")
    return y["train"], y[split]


def _score(version: LoadedVersion, y_true: list[str], y_pred: Sequence[str]) -> tuple[float, float]:
    """Accuracy and macro F1."""
    # Macro F1 over the version's label list with zero_division=0, exactly as evaluation.metrics computes it,
    # so a baseline's number and a trained model's number can be compared directly.
    accuracy = float(accuracy_score(y_true, y_pred))
    macro_f1 = float(f1_score(y_true, list(y_pred), labels=version.labels, average="macro", zero_division=0))
    return accuracy, macro_f1


def _fit_tuned(
    fit: Callable[[float], Any],
    x_val: Any,
    y_val: list[str],
    labels: list[str],
    tune: bool,
    c_grid: Sequence[float],
) -> tuple[Any, dict[str, Any]]:
    """Fit one model per C on train; keep the best val macro F1 (ties go to the smaller, more regularised C)."""
    if not tune:
        return fit(1.0), {"C": 1.0, "tuned_on": None}
    best: tuple[float, float, Any] | None = None
    for c in sorted(c_grid):
        model = fit(c)
        score = float(f1_score(y_val, model.predict(x_val), labels=labels, average="macro", zero_division=0))
        if best is None or score > best[1]:
            best = (c, score, model)
    assert best is not None  # c_grid is checked non-empty by the callers
    return best[2], {"C": best[0], "tuned_on": "val", "val_macro_f1": best[1]}


def _one_thread() -> Any:
    """BLAS and OpenMP limited to one thread, for the duration of a ``with`` block.

    These problems are small (MNIST 1,000: a (788, 784) matrix): extra BLAS threads win nothing and, on a
    busy machine, spin — one image fit went from 0.1 s to 3-6 s with two threads on two loaded cores. The
    thread count also changes lbfgs's floating-point sums (78 vs 77 iterations, and a different C chosen, seen
    on MNIST 1,000), so one thread also makes a result independent of how many cores the machine has.
    """
    return threadpool_limits(limits=1)


def _should_tune(version: LoadedVersion, split: str, c_grid: Sequence[float]) -> bool:
    if not c_grid:
        raise BaselineError(version.name, split, "c_grid is empty")
    # Tuning on the split being reported would flatter the baseline; with no val split there is nothing to tune on.
    return split != "val" and bool(version.splits.get("val"))


def majority_baseline(version: LoadedVersion, split: str = "test") -> BaselineResult:
    """Predict the most frequent train label for every record (ties go to the label listed first).

    Raises:
        BaselineError: unknown or empty split, or list-valued (multi-label, span) labels.
    """
    y_train, y_eval = _labels(version, split, ())
    start = time.perf_counter()
    counts = Counter(y_train)
    label = max(version.labels, key=lambda lab: counts.get(lab, 0))
    seconds = time.perf_counter() - start
    accuracy, macro_f1 = _score(version, y_eval, [label] * len(y_eval))
    return BaselineResult("majority", split, accuracy, macro_f1, len(y_train), len(y_eval), {"label": label}, seconds)


def text_baseline(
    version: LoadedVersion, split: str = "test", c_grid: Sequence[float] = C_GRID, max_iter: int = 2000
) -> BaselineResult:
    """TF-IDF (word 1-2 grams, sublinear tf, min_df 2) and logistic regression, trained on train.

    Args:
        version: a single-label text classification version.
        split: the split to score on.
        c_grid: inverse regularisation strengths tried on the val split.
        max_iter: lbfgs iterations; enough for these sizes to converge.

    Raises:
        BaselineError: wrong task type, unknown or empty split, list-valued labels, or no usable vocabulary.
    """
    y_train, y_eval = _labels(version, split, TEXT_TASKS)
    tune = _should_tune(version, split, c_grid)
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    try:
        x_train = vectorizer.fit_transform([r["text"] for r in version.splits["train"]])
    except ValueError as exc:  # "empty vocabulary": too few or too short train texts for min_df=2
        raise BaselineError(version.name, split, f"TF-IDF found no features in train: {exc}") from None
    x_val = vectorizer.transform([r["text"] for r in version.splits.get("val", [])]) if tune else None
    y_val = [r["label"] for r in version.splits.get("val", [])]

    def fit(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=max_iter).fit(x_train, y_train)

    with _one_thread():
        model, params = _fit_tuned(fit, x_val, y_val, version.labels, tune, c_grid)
        seconds = time.perf_counter() - start
        y_pred = model.predict(vectorizer.transform([r["text"] for r in version.splits[split]]))
    params["features"] = int(x_train.shape[1])
    accuracy, macro_f1 = _score(version, y_eval, list(y_pred))
    return BaselineResult("tfidf_logreg", split, accuracy, macro_f1, len(y_train), len(y_eval), params, seconds)


def _pixels(version: LoadedVersion, split: str, size: int) -> np.ndarray:
    """(N, size * size) float32 grayscale pixels in [0, 1], in record order."""
    dataset = version.image_dataset(split, size=size, channels=1)
    if not len(dataset):
        return np.zeros((0, size * size), dtype=np.float32)
    return np.stack([dataset[i][0].reshape(-1) for i in range(len(dataset))])  # (N, 1, H, W) -> (N, H * W)


def image_baseline(
    version: LoadedVersion, split: str = "test", size: int = 28, c_grid: Sequence[float] = C_GRID, max_iter: int = 2000
) -> BaselineResult:
    """Logistic regression on raw grayscale pixels (resized to ``size`` x ``size``), trained on train.

    Args:
        version: a single-label image classification version, loaded with its images.
        split: the split to score on.
        size: side the images are resized to, as the trained models see them.
        c_grid: inverse regularisation strengths tried on the val split.
        max_iter: lbfgs iterations; enough for these sizes to converge.

    Raises:
        BaselineError: wrong task type, unknown or empty split, or list-valued labels.
        ValueError: a record's image is missing from ``version.images``.
    """
    y_train, y_eval = _labels(version, split, IMAGE_TASKS)
    tune = _should_tune(version, split, c_grid)
    x_train = _pixels(version, "train", size)
    x_val = _pixels(version, "val", size) if tune else None
    y_val = [r["label"] for r in version.splits.get("val", [])]
    start = time.perf_counter()

    def fit(c: float) -> LogisticRegression:
        return LogisticRegression(C=c, max_iter=max_iter).fit(x_train, y_train)

    with _one_thread():
        model, params = _fit_tuned(fit, x_val, y_val, version.labels, tune, c_grid)
        seconds = time.perf_counter() - start
        y_pred = model.predict(_pixels(version, split, size))
    params["size"] = size
    accuracy, macro_f1 = _score(version, y_eval, list(y_pred))
    return BaselineResult("pixel_logreg", split, accuracy, macro_f1, len(y_train), len(y_eval), params, seconds)
