"""A convolutional text classifier: token embeddings, stacked 1-D convolutions, masked max pooling over time."""

from __future__ import annotations

import torch
from torch import nn

from training.config import ModelConfig


class TextCNN(nn.Module):
    """Embedding + ``layers`` 1-D convolutions (residual after the first) + masked max pooling + linear head.

    Every convolution output is multiplied by the padding mask, so padding positions hold exactly the zeros
    a convolution's own zero padding would supply: appending padding tokens leaves the logits unchanged.
    Each convolution pads ``kernel_size // 2`` on both sides, so sequences shorter than the kernel work.

    Args:
        config: Reads ``embed_dim`` (token embedding width), ``channels`` (output channels of every convolution),
            ``kernel_size`` (every convolution window, in tokens), ``layers`` (convolutions) and ``dropout``
            (before the head).
        vocab_size: Number of token ids; id 0 is padding.
        num_classes: Number of output logits (classes, or labels for multi-label).
    """

    def __init__(self, config: ModelConfig, vocab_size: int, num_classes: int):
        super().__init__()
        embed_dim, channels, kernel_size = config.embed_dim, config.channels, config.kernel_size
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        pad = kernel_size // 2
        self.convs = nn.ModuleList(
            nn.Conv1d(embed_dim if i == 0 else channels, channels, kernel_size, padding=pad)
            for i in range(config.layers)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of padded token ids.

        Args:
            input_ids: (B, T) int64 token ids, 0 = padding.

        Returns:
            (B, C) float32 logits.
        """
        seq_len = input_ids.shape[1]
        mask = (input_ids != 0).unsqueeze(1).float()  # (B, 1, T)
        x = self.embed(input_ids).transpose(1, 2) * mask  # (B, E, T)
        for i, conv in enumerate(self.convs):
            # An even kernel yields T + 1 positions; keep the first T so the mask lines up.
            h = torch.relu(conv(x)[..., :seq_len]) * mask  # (B, K, T)
            x = h if i == 0 else x + h
        # Values are >= 0 (ReLU outputs, and sums of them) and padding is exactly 0, so a plain max over time
        # is the max over real tokens; a fully padded row pools to zeros instead of a large negative number.
        pooled = x.amax(dim=-1)  # (B, K)
        return self.head(self.dropout(pooled))  # (B, C)
