"""A small text classifier: token (and hashed bigram) embeddings, masked mean and max pooling, a two-layer head."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from training.config import ModelConfig


class BagOfEmbeddings(nn.Module):
    """Embedding + masked mean/max pooling + MLP, optionally over hashed bigrams too (fastText's trick).

    Embedding + mean exports to ONNX as plain Gather + ReduceMean (``nn.EmbeddingBag`` exports as a
    slow Loop), so the exported graph stays fast under ONNX Runtime. Bigrams are hashed from the token ids
    inside ``forward`` (``(a * vocab_size + b) mod ngram_buckets``), so preprocessing stays the plain token
    ids every runtime already produces, and the hash exports as integer Mul/Add/Mod.

    Args:
        config: Reads ``embed_dim`` (token embedding width), ``hidden_dim`` (the head's hidden layer), ``dropout``
            (in the head), and:

            - ``ngram_buckets``: hash buckets for bigram embeddings; 0 embeds single tokens only.
            - ``subword_buckets``: hash buckets for the character n-grams (3 to 5 characters, with ``<`` and ``>``
              marking the word's ends) of every vocabulary token, fastText's subword trick; 0 uses none. Each
              token's n-gram rows are a buffer of the model (``set_subwords`` fills it from the vocabulary), so
              the input stays plain token ids and rare words share evidence with their frequent relatives.
            - ``wide``: add a linear term over the same tokens and bigrams (one weight per feature and class,
              summed and divided by the square root of the feature count), as wide-and-deep models do: the deep
              part then learns what a bag-of-n-grams logistic regression cannot.
        vocab_size: Number of token ids; id 0 is padding.
        num_classes: Number of output logits (classes, or labels for multi-label).
    """

    # Buffers (register_buffer): typed here, as nn.Module's attribute lookup cannot tell them from submodules.
    subword_ids: torch.Tensor
    folded_sum: torch.Tensor
    folded_max: torch.Tensor
    folded_count: torch.Tensor
    folded_wide: torch.Tensor

    def __init__(self, config: ModelConfig, vocab_size: int, num_classes: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.ngram_buckets = ngram_buckets = config.ngram_buckets
        self.subword_buckets = subword_buckets = config.subword_buckets
        embed_dim, dropout = config.embed_dim, config.dropout
        # Rows [0, vocab_size) are tokens (0 = padding), then ngram_buckets bigram rows, then subword_buckets rows.
        rows = vocab_size + ngram_buckets + subword_buckets
        self.embed = nn.Embedding(rows, embed_dim, padding_idx=0)
        self.wide = nn.Embedding(rows, num_classes, padding_idx=0) if config.wide else None
        # (vocab_size, SUBWORDS_PER_TOKEN) embedding rows of each token's character n-grams, 0 where none.
        # Saved only when used, so checkpoints of models without subwords load unchanged.
        self.register_buffer(
            "subword_ids",
            torch.zeros(vocab_size, SUBWORDS_PER_TOKEN if subword_buckets else 0, dtype=torch.long),
            persistent=bool(subword_buckets),
        )
        if self.wide is not None:
            nn.init.zeros_(self.wide.weight)  # starts as no-op; the linear term grows from the data
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear((4 if subword_buckets else 2) * embed_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(config.hidden_dim, num_classes),
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of padded token ids.

        Args:
            input_ids: (B, T) int64 token ids, 0 = padding.

        Returns:
            (B, C) float32 logits.
        """
        groups = [input_ids]  # tokens and bigrams pool together; subwords, far more numerous, pool on their own
        if self.ngram_buckets:
            groups[0] = torch.cat([input_ids, self.bigram_ids(input_ids)], dim=1)  # (B, 2T)
        folded = self.subword_buckets and "folded_sum" in self._buffers and not self.training
        if self.subword_buckets and not folded:
            groups.append(self.subword_ids[input_ids].flatten(1))  # (B, T * SUBWORDS_PER_TOKEN)
        pooled, wide = [], []
        for ids in groups:
            mask = (ids != 0).unsqueeze(-1).float()  # (B, N, 1)
            emb = self.embed(ids)  # (B, N, E)
            count = mask.sum(dim=1)  # (B, 1)
            pooled.append((emb * mask).sum(dim=1) / count.clamp(min=1.0))  # mean, (B, E)
            maxed = (emb + (mask - 1.0) * 1e4).amax(dim=1)  # max, (B, E); padding pushed far below
            pooled.append(torch.where(count > 0, maxed, torch.zeros_like(maxed)))  # nothing to pool: 0, not -1e4
            if self.wide is not None:
                wide.append((self.wide(ids) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0).sqrt())  # (B, C)
        if folded:  # fold_subwords: one row per token instead of SUBWORDS_PER_TOKEN, the same pooled values
            count = self.folded_count[input_ids].sum(dim=1)  # (B, 1)
            pooled.append(self.folded_sum[input_ids].sum(dim=1) / count.clamp(min=1.0))
            maxed = self.folded_max[input_ids].amax(dim=1)
            pooled.append(torch.where(count > 0, maxed, torch.zeros_like(maxed)))
            if self.wide is not None:
                wide.append(self.folded_wide[input_ids].sum(dim=1) / count.clamp(min=1.0).sqrt())
        logits = self.head(torch.cat(pooled, dim=-1))  # (B, C)
        for term in wide:
            logits = logits + term
        return logits

    def fold_subwords(self) -> None:
        """Precompute from the trained weights each vocabulary token's subword sum, max, count and wide sum, so
        inference gathers one row per token instead of ``SUBWORDS_PER_TOKEN`` (fastText's precomputed word
        vectors). Exact up to float summation order. Used in eval mode only; ``train()`` drops the tables, so
        they never go stale. ``training.export`` folds before exporting. A no-op without subwords."""
        if not self.subword_buckets:
            return
        with torch.no_grad():
            mask = (self.subword_ids != 0).unsqueeze(-1).float()  # (V, K, 1)
            emb = self.embed(self.subword_ids)  # (V, K, E)
            tables = {
                "folded_sum": (emb * mask).sum(dim=1),  # (V, E)
                "folded_max": (emb + (mask - 1.0) * 1e4).amax(dim=1),  # (V, E); -1e4 for tokens without n-grams
                "folded_count": mask.sum(dim=1),  # (V, 1)
            }
            if self.wide is not None:
                tables["folded_wide"] = (self.wide(self.subword_ids) * mask).sum(dim=1)  # (V, C)
        for name, table in tables.items():
            self.register_buffer(name, table, persistent=False)  # never saved: rebuilt from the weights

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        for name in FOLDED:  # new weights: the folded tables would be stale, whatever the mode
            self._buffers.pop(name, None)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def train(self, mode: bool = True) -> BagOfEmbeddings:
        if mode:
            for name in FOLDED:
                self._buffers.pop(name, None)
        return super().train(mode)

    def bigram_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) embedding rows of the bigrams starting at each position; 0 where either token is padding."""
        following = nn.functional.pad(input_ids, (0, 1))[:, 1:]  # (B, T): the next token, 0 after the last
        bucket = (input_ids * self.vocab_size + following) % self.ngram_buckets + self.vocab_size
        return torch.where((input_ids != 0) & (following != 0), bucket, torch.zeros_like(bucket))

    def set_subwords(self, tokens: Sequence[str]) -> None:
        """Fill the subword buffer from the vocabulary (``tokens[i]`` is id ``i``); ids 0 and 1 (padding and
        unknown) get no n-grams. A no-op without ``subword_buckets``."""
        if not self.subword_buckets:
            return
        if len(tokens) != self.subword_ids.shape[0]:
            raise ValueError(f"{len(tokens)} tokens for a model of vocab_size {self.subword_ids.shape[0]}")
        offset = self.vocab_size + self.ngram_buckets
        table = torch.zeros_like(self.subword_ids)
        for i, token in enumerate(tokens[2:], start=2):
            grams = char_ngrams(token)[:SUBWORDS_PER_TOKEN]
            buckets = [offset + zlib.crc32(g.encode("utf-8")) % self.subword_buckets for g in grams]
            table[i, : len(buckets)] = torch.tensor(buckets, dtype=torch.long)
        self.subword_ids.copy_(table)


SUBWORDS_PER_TOKEN = 24
FOLDED = ("folded_sum", "folded_max", "folded_count", "folded_wide")
SUBWORD_SIZES = (3, 4, 5)


def char_ngrams(token: str) -> list[str]:
    """The distinct character n-grams of ``<token>``, shortest first (``"hi"``: ``<hi``, ``hi>``, ``<hi>``)."""
    word = f"<{token}>"
    grams = (word[i : i + n] for n in SUBWORD_SIZES for i in range(len(word) - n + 1))
    return list(dict.fromkeys(grams))
