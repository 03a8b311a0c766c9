"""Streaming for dataset versions larger than memory: a pulled version's JSONL files, read line by line.

    >>> from datastore.loader import load, pull
    >>> from datastore.streaming import StreamingTextDataset
    >>> folder = pull("big-v1", repo=".fsml/data", out=Path("big-v1"))
    >>> train = StreamingTextDataset(folder / "train.jsonl", vocab, labels)

Imports torch (the loader itself does not), and no Django.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from torch.utils.data import IterableDataset, get_worker_info

from modelpack.text import Vocabulary


class StreamingTextDataset(IterableDataset):
    """Records of a pulled split file, read line by line: memory stays flat for any size of version.

    Each DataLoader worker reads every line but keeps only its own share (line number modulo the number of
    workers), so no record is seen twice in an epoch.
    """

    def __init__(self, path: Path, vocab: Vocabulary, labels: list[str], max_len: int = 64) -> None:
        self.path, self.vocab, self.max_len = Path(path), vocab, max_len
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __iter__(self) -> Iterator[tuple[list[int], int]]:
        worker = get_worker_info()
        share, shares = (worker.id, worker.num_workers) if worker else (0, 1)
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                if n % shares == share and line.strip():
                    record = json.loads(line)
                    yield self.vocab.encode(record["text"], self.max_len), self.label_index[record["label"]]
