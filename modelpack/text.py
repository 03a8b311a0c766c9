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


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """``tokenize``'s tokens with their character offsets: (token, start, end), end exclusive."""
    return [(m.group().lower(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


OUTSIDE = "O"


def bio_tags(labels: list[str]) -> list[str]:
    """The tag set of a span-labelling task: O, then B-label and I-label for each label, in label order."""
    return [OUTSIDE, *(f"{prefix}-{label}" for label in labels for prefix in ("B", "I"))]


def spans_to_tags(offsets: list[tuple[str, int, int]], spans: list[dict]) -> list[str]:
    """BIO tags per token: a token inside a span (by any overlap) takes the span's label; the first such
    token of each span gets B-. Spans that cover no token are dropped (they cannot be learnt)."""
    tags = [OUTSIDE] * len(offsets)
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        inside = [i for i, (_, start, end) in enumerate(offsets) if start < span["end"] and end > span["start"]]
        for n, i in enumerate(inside):
            if tags[i] == OUTSIDE:  # overlapping spans: the earlier span keeps its tokens
                tags[i] = f"{'B' if n == 0 else 'I'}-{span['label']}"
    return tags


def tags_to_spans(offsets: list[tuple[str, int, int]], tags: list[str]) -> list[dict]:
    """Character spans from BIO tags; an I- tag that does not continue a span of its label starts one."""
    spans: list[dict] = []
    open_span = False
    for (_, start, end), tag in zip(offsets, tags, strict=False):
        if tag == OUTSIDE:
            open_span = False
            continue
        prefix, _, label = tag.partition("-")
        if prefix == "I" and open_span and spans[-1]["label"] == label:
            spans[-1]["end"] = end
        else:
            spans.append({"start": start, "end": end, "label": label})
            open_span = True
    return spans
