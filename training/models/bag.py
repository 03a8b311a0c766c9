"""A small text classifier: token embeddings, masked mean and max pooling, a two-layer head."""

from __future__ import annotations

import torch
from torch import nn

from training.models.base import constructor_args


class BagOfEmbeddings(nn.Module):
    """Embedding + masked mean/max pooling + MLP.

    Embedding + mean exports to ONNX as plain Gather + ReduceMean (``nn.EmbeddingBag`` exports as a
    slow Loop), so the exported graph stays fast under ONNX Runtime.

    Args:
        vocab_size: Number of token ids; id 0 is padding.
        num_classes: Number of output logits (classes, or labels for multi-label).
        embed_dim: Width of the token embeddings.
        hidden_dim: Width of the hidden layer of the head.
        dropout: Dropout probability in the head.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.hparams = constructor_args(locals())
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
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
        mask = (input_ids != 0).unsqueeze(-1).float()  # (B, T, 1)
        emb = self.embed(input_ids)  # (B, T, E)
        mean = (emb * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (B, E)
        maxed = (emb + (mask - 1.0) * 1e4).amax(dim=1)  # (B, E); padding pushed far below any value
        return self.head(torch.cat([mean, maxed], dim=-1))  # (B, C)
