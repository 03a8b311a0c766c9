"""A small text classifier: token (and hashed bigram) embeddings, masked mean and max pooling, a two-layer head."""

from __future__ import annotations

import torch
from torch import nn

from training.models.base import constructor_args


class BagOfEmbeddings(nn.Module):
    """Embedding + masked mean/max pooling + MLP, optionally over hashed bigrams too (fastText's trick).

    Embedding + mean exports to ONNX as plain Gather + ReduceMean (``nn.EmbeddingBag`` exports as a
    slow Loop), so the exported graph stays fast under ONNX Runtime. Bigrams are hashed from the token ids
    inside ``forward`` (``(a * vocab_size + b) mod ngram_buckets``), so preprocessing stays the plain token
    ids every runtime already produces, and the hash exports as integer Mul/Add/Mod.

    Args:
        vocab_size: Number of token ids; id 0 is padding.
        num_classes: Number of output logits (classes, or labels for multi-label).
        embed_dim: Width of the token embeddings.
        hidden_dim: Width of the hidden layer of the head.
        dropout: Dropout probability in the head.
        ngram_buckets: Hash buckets for bigram embeddings; 0 (the default) embeds single tokens only.
        wide: Add a linear term over the same tokens and bigrams (one weight per feature and class, summed and
            divided by the square root of the feature count), as wide-and-deep models do: the deep part then
            learns what a bag-of-n-grams logistic regression cannot.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int,
        hidden_dim: int,
        dropout: float,
        ngram_buckets: int = 0,
        wide: bool = False,
    ):
        super().__init__()
        self.hparams = constructor_args(locals())
        self.vocab_size = vocab_size
        self.ngram_buckets = ngram_buckets
        # Rows [0, vocab_size) are tokens (0 = padding); rows vocab_size + [0, ngram_buckets) are bigram buckets.
        self.embed = nn.Embedding(vocab_size + ngram_buckets, embed_dim, padding_idx=0)
        self.wide = nn.Embedding(vocab_size + ngram_buckets, num_classes, padding_idx=0) if wide else None
        if self.wide is not None:
            nn.init.zeros_(self.wide.weight)  # starts as no-op; the linear term grows from the data
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(2 * embed_dim, hidden_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of padded token ids.

        Args:
            input_ids: (B, T) int64 token ids, 0 = padding.

        Returns:
            (B, C) float32 logits.
        """
        if self.ngram_buckets:
            input_ids = torch.cat([input_ids, self.bigram_ids(input_ids)], dim=1)  # (B, 2T)
        mask = (input_ids != 0).unsqueeze(-1).float()  # (B, T, 1)
        emb = self.embed(input_ids)  # (B, T, E)
        mean = (emb * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, E)
        maxed = (emb + (mask - 1.0) * 1e4).amax(dim=1)  # (B, E); padding pushed far below any value
        logits = self.head(torch.cat([mean, maxed], dim=-1))  # (B, C)
        if self.wide is not None:
            logits = logits + (self.wide(input_ids) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0).sqrt()
        return logits

    def bigram_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) embedding rows of the bigrams starting at each position; 0 where either token is padding."""
        following = nn.functional.pad(input_ids, (0, 1))[:, 1:]  # (B, T): the next token, 0 after the last
        bucket = (input_ids * self.vocab_size + following) % self.ngram_buckets + self.vocab_size
        return torch.where((input_ids != 0) & (following != 0), bucket, torch.zeros_like(bucket))
