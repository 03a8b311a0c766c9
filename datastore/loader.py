"""The loader researchers train from: any dataset version, by name, as torch Datasets and DataLoaders.

Reads through DVC's Python API, so it works on a machine that has only the data repository (or its git
URL) and the DVC remote: no database, no Django.

    >>> from datastore.loader import load
    >>> ds = load("sentiment-v1", repo=".fsml/data")
    >>> train = ds.text_dataset("train", vocab=ds.build_vocab())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datastore.splits import SPLITS
from datastore.text import Vocabulary, pad


class DatasetNotFound(LookupError):
    """No dataset version of that name in the data repository."""

    def __init__(self, name: str, repo: str, reason: str) -> None:
        super().__init__(f"dataset version {name!r} not found in {repo}: {reason}")
        self.name, self.repo, self.reason = name, repo, reason


def dataset_path(name: str) -> str:
    """Folder of a dataset version inside the data repository."""
    return f"datasets/{name}"


def dataset_tag(name: str) -> str:
    """Git tag that pins a dataset version."""
    return f"dataset/{name}"


@dataclass
class LoadedVersion:
    """One dataset version: its manifest and its records per split."""

    name: str
    manifest: dict[str, Any]
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    def build_vocab(self, min_freq: int = 2, max_size: int = 30_000) -> Vocabulary:
        """Vocabulary from the training split only (no leakage from val/test)."""
        return Vocabulary.build((r["text"] for r in self.splits["train"]), min_freq, max_size)

    def text_dataset(self, split: str, vocab: Vocabulary, max_len: int = 64) -> TextClassificationDataset:
        return TextClassificationDataset(self.splits[split], vocab, self.labels, max_len)


def load(name: str, repo: str, rev: str | None = None, splits: tuple[str, ...] = SPLITS) -> LoadedVersion:
    """Fetch a dataset version's manifest and split files through DVC.

    Args:
        name: the dataset version name.
        repo: path or git URL of the data repository.
        rev: git revision; defaults to the version's tag.
    """
    import dvc.api
    from dvc.exceptions import DvcException

    rev = rev or dataset_tag(name)
    base = dataset_path(name)
    try:
        manifest = json.loads(dvc.api.read(f"{base}/manifest.json", repo=repo, rev=rev, encoding="utf-8"))
        loaded = LoadedVersion(name, manifest)
        for split in splits:
            with dvc.api.open(f"{base}/{split}.jsonl", repo=repo, rev=rev, encoding="utf-8") as fh:
                loaded.splits[split] = [json.loads(line) for line in fh if line.strip()]
    except (DvcException, FileNotFoundError) as exc:
        raise DatasetNotFound(name, repo, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return loaded


class TextClassificationDataset:
    """Token ids and label index per record; a ``torch.utils.data.Dataset`` by protocol."""

    def __init__(self, records: list[dict[str, Any]], vocab: Vocabulary, labels: list[str], max_len: int):
        self.records, self.vocab, self.max_len = records, vocab, max_len
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> tuple[list[int], int]:
        record = self.records[idx]
        return self.vocab.encode(record["text"], self.max_len), self.label_index[record["label"]]


def collate_text(batch: list[tuple[list[int], int]]) -> tuple[Any, Any]:
    """Right-pad token ids with 0. Returns ids (B, T) int64 and labels (B,) int64 tensors."""
    import torch

    ids = pad([tokens for tokens, _ in batch])
    labels = np.array([label for _, label in batch], dtype=np.int64)
    return torch.from_numpy(ids), torch.from_numpy(labels)


def dataloader(
    dataset: TextClassificationDataset, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0
) -> Any:
    """A DataLoader with a seeded shuffle and worker processes when asked."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_text,  # type: ignore[arg-type]
        generator=generator,
        num_workers=num_workers,
    )
