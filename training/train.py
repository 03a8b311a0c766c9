"""Train a text classifier from a dataset version read through the loader."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from datastore.loader import LoadedVersion, dataloader, load
from datastore.text import Vocabulary
from training.config import TrainConfig
from training.model import BagOfEmbeddings


@dataclass
class TrainResult:
    model: BagOfEmbeddings
    vocab: Vocabulary
    config: TrainConfig
    history: list[dict[str, float]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def accuracy(model: nn.Module, loader: Any, device: str) -> float:
    model.eval()
    correct = total = 0
    for ids, labels in loader:
        pred = model(ids.to(device)).argmax(dim=-1)
        correct += int((pred.cpu() == labels).sum())
        total += len(labels)
    return correct / max(total, 1)


def train(
    config: TrainConfig,
    data: LoadedVersion | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train with Adam, keeping the weights of the best validation epoch."""
    seed_everything(config.seed)
    data = data or load(config.dataset, repo=config.data_repo)
    config.labels = data.labels
    vocab = data.build_vocab(config.min_freq, config.max_vocab)
    train_dl = dataloader(data.text_dataset("train", vocab, config.max_len), config.batch_size, True, config.seed)
    val_dl = dataloader(data.text_dataset("val", vocab, config.max_len), 256, False)
    model = BagOfEmbeddings(len(vocab), len(config.labels), config.embed_dim, config.hidden_dim, config.dropout).to(
        config.device
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict[str, float]] = []
    best_acc, best_state = -1.0, None
    for epoch in range(1, config.epochs + 1):
        model.train()
        total_loss, batches = 0.0, 0
        for ids, labels in train_dl:
            optimiser.zero_grad()
            loss = loss_fn(model(ids.to(config.device)), labels.to(config.device))
            loss.backward()
            optimiser.step()
            total_loss, batches = total_loss + loss.item(), batches + 1
        row = {
            "epoch": epoch,
            "train_loss": total_loss / max(batches, 1),
            "val_accuracy": accuracy(model, val_dl, config.device),
        }
        history.append(row)
        if on_epoch:
            on_epoch(row)
        if row["val_accuracy"] > best_acc:
            best_acc = row["val_accuracy"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model, vocab, config, history)


def save_checkpoint(result: TrainResult, out_dir: Path) -> Path:
    """Write weights, vocabulary, config and history; return the checkpoint path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "checkpoint.pt"
    torch.save({"state_dict": result.model.state_dict(), "config": result.config.as_dict()}, path)
    result.vocab.save(out_dir / "vocab.json")
    (out_dir / "history.json").write_text(json.dumps(result.history, indent=2))
    return path


def load_checkpoint(out_dir: Path) -> TrainResult:
    """Rebuild a trained model from ``save_checkpoint``'s folder."""
    saved = torch.load(out_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(saved["config"])
    vocab = Vocabulary.load(out_dir / "vocab.json")
    model = BagOfEmbeddings(len(vocab), len(config.labels), config.embed_dim, config.hidden_dim, config.dropout)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    history = json.loads((out_dir / "history.json").read_text())
    return TrainResult(model, vocab, config, history)
