"""Text tokenisation and vocabulary shared by training and the serving runtime (no Django, no torch)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[#@][a-z0-9_]+|[^\sa-z0-9]", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lower-case word, hashtag and punctuation tokens."""
    return [tok.lower() for tok in _TOKEN.findall(text)]


def pad(rows: list[list[int]]) -> np.ndarray:
    """Right-pad id lists with 0 to the longest. Returns (B, T) int64."""
    out = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = ids
    return out


@dataclass
class Vocabulary:
    """Token to id mapping; id 0 is padding, id 1 unknown."""

    tokens: list[str] = field(default_factory=lambda: [PAD, UNK])

    def __post_init__(self) -> None:
        self._index = {tok: i for i, tok in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 2, max_size: int = 30_000) -> Vocabulary:
        """Build from training texts; ties broken alphabetically so the result is deterministic."""
        counts = Counter(tok for text in texts for tok in tokenize(text))
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        return cls([PAD, UNK, *ranked[: max_size - 2]])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_len: int) -> list[int]:
        """Token ids, truncated to max_len (never empty: an empty text becomes one UNK)."""
        ids = [self._index.get(tok, 1) for tok in tokenize(text)[:max_len]]
        return ids or [1]

    def encode_batch(self, texts: list[str], max_len: int) -> np.ndarray:
        """Encode and right-pad with 0 to the longest text in the batch. Returns (B, T) int64."""
        return pad([self.encode(t, max_len) for t in texts])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"tokens": self.tokens}, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        return cls(json.loads(path.read_text(encoding="utf-8"))["tokens"])
