"""Small torch models and their data, trained in a second on one thread, for the export, quantisation, pruning and
TensorRT tests."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import torch
from torch import nn

from training.export import export_onnx

VOCAB, SIGNAL_TOKEN = 200, 5


class BagClassifier(nn.Module):
    """Embedding, masked mean over tokens (0 is padding), MLP head: the shape of the platform's text model."""

    def __init__(self, vocab: int = VOCAB, dim: int = 48) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != 0).unsqueeze(-1).float()  # (B, T, 1)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B, C)
        return self.out(torch.relu(self.hidden(pooled)))  # (B, 2)


class TinyConvNet(nn.Module):
    """Two convs and a linear head over 1x12x12 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.head = nn.Linear(16 * 3 * 3, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # named like the text model's input
        x = torch.max_pool2d(torch.relu(self.conv1(input_ids)), 2)  # (B, 8, 6, 6)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)  # (B, 16, 3, 3)
        return self.head(x.flatten(1))


def text_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (with padding) whose label is whether SIGNAL_TOKEN occurs."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(6, VOCAB, (n, 16), generator=g)
    label = torch.rand(n, generator=g) < 0.5
    pos = torch.randint(0, 8, (n,), generator=g)  # within the shortest sequence, so padding never hides it
    ids[label, pos[label]] = SIGNAL_TOKEN
    lengths = torch.randint(8, 17, (n,), generator=g)
    ids[torch.arange(16).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return ids, label.long()


def image_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images whose label is whether a bright 3x3 patch sits in the top or bottom half."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 12, 12, generator=g) * 0.5
    label = (torch.rand(n, generator=g) < 0.5).long()
    cols = torch.randint(0, 10, (n,), generator=g)
    rows = torch.randint(0, 3, (n,), generator=g) + 6 * label
    for i in range(n):
        x[i, 0, rows[i] : rows[i] + 3, cols[i] : cols[i] + 3] += 2.0
    return x, label


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> nn.Module:
    """A short real training run (Adam, batch 64).

    On one thread: these ops are tiny, and on a busy 2-core machine two OpenMP threads wait on each other at
    every barrier (measured 15 s for this run on 2 threads against 0.2 s on 1).
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for step in range(steps):
            idx = torch.arange(step * 64, step * 64 + 64) % len(x)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.inference_mode():
        return float((model(x).argmax(-1) == y).float().mean())


def export(model: nn.Module, example: torch.Tensor, path: Path, seq_dynamic: bool = True) -> Path:
    """Export as training.export does (dynamo, opset 18+, dynamic batch and sequence)."""
    assert export_onnx(model, example, path, "input_ids", seq_axis=seq_dynamic) == "dynamo"
    return path


@functools.cache
def _trained_bag_classifier() -> nn.Module:
    x, y = text_data(2048, seed=1)
    return train(BagClassifier(), x, y)


def trained_bag_classifier() -> nn.Module:
    """A BagClassifier trained once per process; each caller gets its own copy."""
    model = copy.deepcopy(_trained_bag_classifier())
    assert accuracy(model, *text_data(512, seed=2)) > 0.9  # it learned the rule, so agreement means something
    return model
