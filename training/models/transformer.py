"""A tiny pre-norm Transformer encoder for text classification, written with plain matmuls so it exports to ONNX."""

from __future__ import annotations

import math

import torch
from torch import nn

from training.config import ModelConfig

# Added to the attention scores of padding keys. Large enough that exp() underflows to exactly 0 next to any real
# score, finite so that a fully padded row gets a uniform (not NaN) softmax.
MASK_VALUE = -1e9


class SelfAttention(nn.Module):
    """Multi-head self-attention over (B, T, E) with a key padding mask.

    ``nn.MultiheadAttention`` is avoided on purpose: its fast path and mask handling are fragile under
    ``torch.export``; plain matmul + softmax exports with dynamic batch and sequence axes.
    """

    def __init__(self, embed_dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.head_dim = embed_dim // heads
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim)
        self.proj = nn.Linear(embed_dim, embed_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """Attend over the sequence.

        Args:
            x: (B, T, E) hidden states.
            key_bias: (B, 1, 1, T) 0 for real keys, ``MASK_VALUE`` for padding keys.

        Returns:
            (B, T, E) attention output.
        """
        qkv = self.qkv(x).unflatten(-1, (3, self.heads, self.head_dim))  # (B, T, 3, H, D)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, T, D)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim) + key_bias  # (B, H, T, T)
        attn = self.dropout(torch.softmax(scores, dim=-1))  # (B, H, T, T)
        out = (attn @ v).transpose(1, 2).flatten(2)  # (B, T, E)
        return self.proj(out)  # (B, T, E)


class EncoderBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, embed_dim: int, heads: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(embed_dim)
        self.attn = SelfAttention(embed_dim, heads, dropout)
        self.ln2 = nn.LayerNorm(embed_dim)
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, embed_dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln1(x), key_bias))  # (B, T, E)
        return x + self.dropout(self.mlp(self.ln2(x)))  # (B, T, E)


class TinyTransformer(nn.Module):
    """Token + learned position embeddings, ``layers`` pre-norm encoder blocks, masked mean pooling, linear head.

    Padding keys are masked out of attention and out of the pooling, so appending padding tokens does not change
    the logits, and a fully padded row gives finite logits (those of a zero pooled vector).

    Args:
        config: Reads ``embed_dim`` (model width; divisible by ``heads``), ``hidden_dim`` (each block's MLP),
            ``heads`` (attention heads per block), ``layers`` (encoder blocks), ``dropout`` (attention weights,
            residual branches, before the head) and ``max_len`` (learned positions: positions past it share the
            last embedding rather than fail, so the exported graph needs no bound on the sequence axis; the
            tokeniser truncates to max_len anyway).
        vocab_size: Number of token ids; id 0 is padding.
        num_classes: Number of output logits (classes, or labels for multi-label).
    """

    def __init__(self, config: ModelConfig, vocab_size: int, num_classes: int):
        super().__init__()
        embed_dim, heads, dropout = config.embed_dim, config.heads, config.dropout
        if embed_dim % heads:
            raise ValueError(f"model.embed_dim ({embed_dim}) must be divisible by model.heads ({heads})")
        self.max_len = config.max_len
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.pos = nn.Embedding(config.max_len, embed_dim)
        self.blocks = nn.ModuleList(
            EncoderBlock(embed_dim, heads, config.hidden_dim, dropout) for _ in range(config.layers)
        )
        self.ln_f = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes)
        self.apply(_init_weights)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of padded token ids.

        Args:
            input_ids: (B, T) int64 token ids, 0 = padding.

        Returns:
            (B, C) float32 logits.
        """
        mask = (input_ids != 0).float()  # (B, T)
        key_bias = ((1.0 - mask) * MASK_VALUE)[:, None, None, :]  # (B, 1, 1, T)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).clamp(max=self.max_len - 1)  # (T,)
        x = self.dropout(self.embed(input_ids) + self.pos(positions))  # (B, T, E)
        for block in self.blocks:
            x = block(x, key_bias)  # (B, T, E)
        x = self.ln_f(x)  # (B, T, E)
        weights = mask.unsqueeze(-1)  # (B, T, 1)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)  # (B, E)
        return self.head(self.dropout(pooled))  # (B, C)


def _init_weights(module: nn.Module) -> None:
    # Small normal init (as nanoGPT/GPT-2 do) keeps early attention near-uniform and training stable.
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
