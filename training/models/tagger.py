"""A token tagger for span labelling (BIO tags): embeddings, dilated residual 1-D convolutions, per-token logits."""

from __future__ import annotations

import torch
from torch import nn

from training.config import ModelConfig


class ConvTagger(nn.Module):
    """Embedding + input convolution + ``layers`` dilated residual convolutions + per-token linear head.

    Dilation doubles per block (1, 2, 4, ...), so the context each token sees on both sides grows exponentially
    with depth while the graph stays plain Conv + Relu + Add, which exports and runs fast. Every convolution output
    is multiplied by the padding mask, so padding holds the zeros a convolution's own padding would: the logits
    of real tokens do not change when padding tokens are appended.

    Args:
        config: Reads ``embed_dim`` (token embedding width), ``channels`` (width of every convolution),
            ``kernel_size`` (every convolution window, in tokens, before dilation), ``layers`` (dilated residual
            blocks) and ``dropout`` (on the block outputs and before the head).
        vocab_size: Number of token ids; id 0 is padding.
        num_tags: Number of tags (for BIO: 2 * span labels + 1).
    """

    def __init__(self, config: ModelConfig, vocab_size: int, num_tags: int):
        super().__init__()
        embed_dim, channels, kernel_size = config.embed_dim, config.channels, config.kernel_size
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.conv_in = nn.Conv1d(embed_dim, channels, kernel_size, padding=kernel_size // 2)
        self.blocks = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=2**i * (kernel_size // 2), dilation=2**i)
            for i in range(config.layers)
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(channels, num_tags)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Per-token tag logits for a batch of padded token ids.

        Args:
            input_ids: (B, T) int64 token ids, 0 = padding.

        Returns:
            (B, T, num_tags) float32 logits; the rows at padding positions are meaningless.
        """
        seq_len = input_ids.shape[1]
        mask = (input_ids != 0).unsqueeze(1).float()  # (B, 1, T)
        x = self.embed(input_ids).transpose(1, 2) * mask  # (B, E, T)
        # An even kernel yields extra positions at the end; keep the first T so the mask lines up.
        x = torch.relu(self.conv_in(x)[..., :seq_len]) * mask  # (B, K, T)
        for conv in self.blocks:
            x = x + self.dropout(torch.relu(conv(x)[..., :seq_len])) * mask  # (B, K, T)
        return self.head(self.dropout(x.transpose(1, 2)))  # (B, T, num_tags)
