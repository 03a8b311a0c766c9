"""Hyperparameters: one dataclass, read from YAML with command-line overrides, saved inside every checkpoint
and archive so any artifact can be rebuilt and explained."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

TASKS = ("text_classification", "multi_label", "spans", "image_classification")
OPTIMISERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")


class ConfigError(ValueError):
    """A training configuration that cannot be used; the message names the key and the reason."""


@dataclass
class TrainConfig:
    """Everything needed to rebuild a training run."""

    # What to learn from
    task: str = "text_classification"  # one of TASKS: the annotation app's task types
    dataset: str = ""
    data_repo: str = ".fsml/data"
    # Model (training.models.MODELS names the models per task)
    model: str = "bag_of_embeddings"
    embed_dim: int = 96
    hidden_dim: int = 96
    dropout: float = 0.3
    layers: int = 2
    heads: int = 4
    kernel_size: int = 3
    channels: int = 32
    ngram_buckets: int = 0  # bag_of_embeddings: hashed bigram embeddings (0: single tokens only)
    wide: bool = False  # bag_of_embeddings: a linear term over tokens and bigrams beside the deep part
    subword_buckets: int = 0  # bag_of_embeddings: hashed character 3-5-grams of each vocabulary token (0: none)
    # The wide term trained as logistic regression is: its own learning rate (0: lr) and an L2 penalty
    # wide_l2 * ||W||^2 / n_train in the loss (1 / (2 C) in scikit-learn's terms; 0: weight decay as the rest)
    wide_lr: float = 0.0
    wide_l2: float = 0.0
    # Inputs
    max_len: int = 64
    min_freq: int = 2
    max_vocab: int = 30_000
    image_size: int = 28
    image_channels: int = 1
    # Optimisation
    optimiser: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-5
    momentum: float = 0.9  # sgd only
    schedule: str = "constant"
    warmup_epochs: int = 0
    step_size: int = 2  # step schedule: decay every step_size epochs
    gamma: float = 0.5  # step schedule: decay factor
    epochs: int = 8
    batch_size: int = 64
    patience: int = 0  # early stopping: epochs without a better validation score; 0 never stops early
    grad_clip: float = 0.0  # 0: no clipping
    # Distillation: a teacher run's folder; its soft labels join the hard ones
    teacher: str = ""
    distill_temperature: float = 2.0
    distill_alpha: float = 0.5  # weight of the teacher's soft labels in the loss
    # Run
    seed: int = 0
    device: str = "cpu"
    num_workers: int = 0
    labels: list[str] = field(default_factory=list)  # filled from the dataset version

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for name, allowed in (("task", TASKS), ("optimiser", OPTIMISERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        for name in ("epochs", "batch_size", "max_len", "embed_dim", "hidden_dim", "image_size", "layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be positive, got {self.lr}")
        if not 0 <= self.dropout < 1 or not 0 <= self.distill_alpha <= 1:
            raise ConfigError("dropout must be in [0, 1) and distill_alpha in [0, 1]")
        if self.patience < 0 or self.warmup_epochs < 0 or self.ngram_buckets < 0 or self.subword_buckets < 0:
            raise ConfigError("patience, warmup_epochs, ngram_buckets and subword_buckets cannot be negative")
        if self.wide_lr < 0 or self.wide_l2 < 0:
            raise ConfigError("wide_lr and wide_l2 cannot be negative")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"a training config is a mapping of keys to values, not {type(data).__name__}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown training config keys: {unknown}; known keys: {sorted(known)}")
        clean = {}
        for key, value in data.items():
            clean[key] = _coerce(key, value, cls.__dataclass_fields__[key].default)
        return cls(**clean)


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a value against the field's default type; ints are accepted where floats are expected."""
    if key == "labels":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("labels: expected a list of names")
        return value
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs from the command line; values are read as YAML scalars (3 -> int, 1e-3 -> float)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {pair!r}: expected key=value")
        value = yaml.safe_load(raw) if raw.strip() else ""
        if isinstance(value, str) and raw.strip().lower().replace(".", "", 1).replace("e-", "", 1).isdigit():
            value = float(raw)  # YAML 1.1 reads "1e-3" as a string
        out[key.strip()] = value
    return out


def load_config(path: Path | None = None, overrides: list[str] | None = None, **values: Any) -> TrainConfig:
    """A config from a YAML file (optional), then keyword values, then ``key=value`` overrides, in that order."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a training config is a mapping of keys to values")
        data.update(loaded or {})
    data.update({k: v for k, v in values.items() if v is not None})
    data.update(parse_overrides(overrides or []))
    return TrainConfig.from_dict(data)


def save_config(config: TrainConfig, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(config.as_dict(), sort_keys=False), encoding="utf-8")
