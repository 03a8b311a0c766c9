"""A trained model as files: ``save_checkpoint`` writes the best weights with the config that rebuilds them,
``load_checkpoint`` rebuilds the model from that config alone (what export and distillation read)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from modelpack.text import Vocabulary
from training.config import TrainConfig, save_config
from training.tasks import Task, make_task

CHECKPOINT_FILE = "checkpoint.pt"


@dataclass
class TrainResult:
    """A trained model with what it was trained with and on: vocabulary, config, task and per-epoch history."""

    model: nn.Module
    vocab: Vocabulary | None
    config: TrainConfig
    history: list[dict[str, float]]
    task: Task
    stopped_early: bool = False


def save_checkpoint(result: TrainResult, out_dir: Path) -> Path:
    """Write weights and config (``checkpoint.pt``), vocabulary, the config as YAML and the history.

    Returns:
        The path of ``checkpoint.pt``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / CHECKPOINT_FILE
    torch.save({"state_dict": result.model.state_dict(), "config": result.config.as_dict()}, path)
    if result.vocab is not None:
        result.vocab.save(out_dir / "vocab.json")
    save_config(result.config, out_dir / "config.yaml")
    (out_dir / "history.json").write_text(json.dumps(result.history, indent=2))
    return path


def load_checkpoint(out_dir: Path) -> TrainResult:
    """Rebuild a trained model from ``save_checkpoint``'s folder: the saved config builds it, then the weights
    load into it.

    Raises:
        FileNotFoundError: the folder holds no checkpoint.
        training.config.ConfigError: the saved config is not one this code reads.
    """
    saved = torch.load(out_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(saved["config"])
    vocab = Vocabulary.load(out_dir / "vocab.json") if (out_dir / "vocab.json").is_file() else None
    task = make_task(config, config.labels, vocab)
    model = task.new_model()
    model.load_state_dict(saved["state_dict"])
    model.eval()
    history = json.loads((out_dir / "history.json").read_text())
    return TrainResult(model, vocab, config, history, task)
