"""Hyperparameters, each written once: the model's own in ``ModelConfig``, nested in the run's ``TrainConfig``
(as nanoGPT's ``GPTConfig`` sits inside its training script). Read from YAML with ``key=value`` overrides
(``model.embed_dim=64`` for a model key), saved inside every checkpoint and archive so any artifact can be rebuilt
and explained."""

from __future__ import annotations

from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

TASKS = ("text_classification", "multi_label", "spans", "image_classification")
OPTIMISERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "step")


class ConfigError(ValueError):
    """A training configuration that cannot be used; the message names the key and the reason."""


@dataclass
class ModelConfig:
    """The model's own hyperparameters: ``training.models.build_model`` takes it whole, and each model reads the
    fields it uses. The vocabulary size and the number of outputs come from the data, not from here."""

    name: str = "bag_of_embeddings"  # training.models.MODELS names the models per task
    embed_dim: int = 96  # token embedding width (text models; the transformer's model width)
    hidden_dim: int = 96  # bag of embeddings: head width; transformer: MLP width
    dropout: float = 0.3
    layers: int = 2  # convolutions (cnn), dilated residual blocks (tagger) or encoder blocks (transformer)
    heads: int = 4  # attention heads (transformer)
    kernel_size: int = 3  # convolution width in tokens (cnn, tagger)
    channels: int = 32  # convolution channels (cnn, tagger); the first block's channels (image cnn)
    max_len: int = 64  # tokens kept per text (the tokeniser truncates there); learned positions (transformer)
    image_channels: int = 1  # input channels of images: 1 greyscale, 3 RGB (image cnn)
    ngram_buckets: int = 0  # bag_of_embeddings: hashed bigram embeddings (0: single tokens only)
    subword_buckets: int = 0  # bag_of_embeddings: hashed character 3-5-grams of each vocabulary token (0: none)
    wide: bool = False  # bag_of_embeddings: a linear term over tokens and bigrams beside the deep part

    def __post_init__(self) -> None:
        sizes = ("embed_dim", "hidden_dim", "layers", "heads", "kernel_size", "channels", "max_len", "image_channels")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}: must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout: must be in [0, 1), got {self.dropout}")
        for name in ("ngram_buckets", "subword_buckets"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}: cannot be negative, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """A model config from a mapping (the ``model:`` section of a YAML config), each value type-checked.

        Raises:
            ConfigError: not a mapping, an unknown key, or a value of the wrong type or out of range.
        """
        if not isinstance(data, dict):
            raise ConfigError(
                f"model: expected a mapping of the model's hyperparameters (name: cnn, embed_dim: 64, ...), "
                f"got {data!r}; model.name=NAME picks the model"
            )
        return cls(**_checked(cls, data, "model."))


@dataclass
class TrainConfig:
    """Everything needed to rebuild a training run; ``model`` holds the model's own hyperparameters."""

    # What to learn from
    task: str = "text_classification"  # one of TASKS: the annotation app's task types
    dataset: str = ""
    data_repo: str = ".fsml/data"
    model: ModelConfig = field(default_factory=ModelConfig)
    # Inputs
    min_freq: int = 2
    max_vocab: int = 30_000
    image_size: int = 28
    # Optimisation
    optimiser: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-5
    momentum: float = 0.9  # sgd only
    # The wide term (model.wide) trained as logistic regression is: its own learning rate (0: lr) and an L2 penalty
    # wide_l2 * ||W||^2 / n_train in the loss (1 / (2 C) in scikit-learn's terms; 0: weight decay as the rest)
    wide_lr: float = 0.0
    wide_l2: float = 0.0
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
        """Refuse values no run can use.

        Raises:
            ConfigError: the first bad value, by key.
        """
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(f"model: expected a ModelConfig, got {self.model!r}")
        for name, allowed in (("task", TASKS), ("optimiser", OPTIMISERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}: {getattr(self, name)!r} is not one of {', '.join(allowed)}")
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr: must be positive, got {self.lr}")
        if not 0 <= self.distill_alpha <= 1:
            raise ConfigError(f"distill_alpha: must be in [0, 1], got {self.distill_alpha}")
        for name in ("patience", "warmup_epochs", "wide_lr", "wide_l2"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: cannot be negative, got {getattr(self, name)}")

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data (``model`` a nested mapping): what checkpoints and manifests store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """A config from ``as_dict``'s shape (a YAML file's), each value type-checked.

        Raises:
            ConfigError: not a mapping, an unknown key, or a value of the wrong type or out of range.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a training config is a mapping of keys to values, not {type(data).__name__}")
        values = _checked(cls, data, "")
        if "model" in values:
            values["model"] = ModelConfig.from_dict(values["model"])
        return cls(**values)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``as_dict()``'s nested mappings as dotted keys (``model.embed_dim``), the names overrides use."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def known_keys() -> list[str]:
    """Every key a config takes, model keys dotted."""
    return sorted(flatten(TrainConfig().as_dict()))


def _checked(cls: type, data: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``data``'s values checked against ``cls``'s fields; unknown keys are refused with every known key listed."""
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(f"{prefix}{key}" for key in set(data) - set(known))
    if unknown:
        model_keys = {f.name for f in fields(ModelConfig)}
        misplaced = [f"model.{key}" for key in unknown if key in model_keys]
        hint = f" (model keys go under model: {', '.join(misplaced)})" if misplaced else ""
        raise ConfigError(f"unknown training config keys: {unknown}{hint}; known keys: {known_keys()}")
    return {key: _coerce(f"{prefix}{key}", value, known[key]) for key, value in data.items()}


def _coerce(key: str, value: Any, spec: Field[Any]) -> Any:
    """Check a value against its field's default type; ints are accepted where floats are expected."""
    if spec.default is MISSING:  # the fields with factories: labels, and model (checked by ModelConfig)
        if key == "labels" and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise ConfigError("labels: expected a list of names")
        return value
    kind = type(spec.default)
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
    """``key=value`` pairs from the command line, keys as written (``model.embed_dim``); values are read as YAML
    scalars (3 -> int, 1e-3 -> float)."""
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


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key (``model.embed_dim``) in nested mappings, copying the mappings it passes through."""
    *path, last = key.split(".")
    for depth, part in enumerate(path, start=1):
        inner = data.get(part, {})
        if not isinstance(inner, dict):
            raise ConfigError(f"{key}: {'.'.join(path[:depth])} is {inner!r}, not a mapping of keys")
        data[part] = dict(inner)
        data = data[part]
    data[last] = value


def load_config(path: Path | None = None, overrides: list[str] | None = None, **values: Any) -> TrainConfig:
    """A config from a YAML file (optional), then keyword values, then ``key=value`` overrides, in that order.

    Raises:
        ConfigError: the file cannot be read or is not a mapping, or any key or value is refused.
    """
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
    for key, value in parse_overrides(overrides or []).items():
        _put(data, key, value)
    return TrainConfig.from_dict(data)


def save_config(config: TrainConfig, path: Path) -> None:
    """Write ``config`` as YAML, in the layout ``load_config`` reads."""
    path.write_text(yaml.safe_dump(config.as_dict(), sort_keys=False), encoding="utf-8")
