"""Hyperparameters: one dataclass, saved inside every checkpoint and archive."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TrainConfig:
    """Everything needed to rebuild a training run."""

    dataset: str = ""
    data_repo: str = ".fsml/data"
    model: str = "bag_of_embeddings"
    embed_dim: int = 96
    hidden_dim: int = 96
    dropout: float = 0.3
    max_len: int = 64
    min_freq: int = 2
    max_vocab: int = 30_000
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 0
    device: str = "cpu"
    labels: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        return cls(**data)
