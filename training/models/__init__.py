"""The model zoo: one model per file, a registry of models per task, and a builder from a ``ModelConfig``.

Every model is built from the config alone (plus the vocabulary size and output count the data gives), so the
config saved in a checkpoint rebuilds it; each takes a single tensor input described by ``input_spec(task)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from training.config import ModelConfig
from training.models.bag import BagOfEmbeddings
from training.models.image_cnn import ImageCNN
from training.models.tagger import ConvTagger
from training.models.text_cnn import TextCNN
from training.models.transformer import TinyTransformer

__all__ = [
    "MODELS",
    "BagOfEmbeddings",
    "ConvTagger",
    "ImageCNN",
    "InputSpec",
    "TextCNN",
    "TinyTransformer",
    "build_model",
    "example_input",
    "input_spec",
]

_TEXT_MODELS: dict[str, type[nn.Module]] = {
    "bag_of_embeddings": BagOfEmbeddings,
    "cnn": TextCNN,
    "transformer": TinyTransformer,
}

# task -> model name -> class. Multi-label uses the text classifiers unchanged: one logit per label, BCE in training.
MODELS: dict[str, dict[str, type[nn.Module]]] = {
    "text_classification": dict(_TEXT_MODELS),
    "multi_label": dict(_TEXT_MODELS),
    "spans": {"tagger": ConvTagger},
    "image_classification": {"cnn": ImageCNN},
}


@dataclass(frozen=True)
class InputSpec:
    """What a task's models take and return, for export, serving signatures and example inputs.

    Attributes:
        name: The forward() parameter, also the ONNX input name ("input_ids" or "pixels").
        dtype: NumPy dtype name of the input ("int64" or "float32").
        shape: Axis names of the input, e.g. ("batch", "seq") or ("batch", "channels", "height", "width").
        dynamic_axes: Indices into ``shape`` of the axes that vary at run time.
        output_rank: Rank of the logits: 2 for (B, C), 3 for per-token (B, T, C).
        output_name: ONNX output name.
    """

    name: str
    dtype: str
    shape: tuple[str, ...]
    dynamic_axes: tuple[int, ...]
    output_rank: int
    output_name: str = "logits"

    def dynamic_shapes(self, max_batch: int = 4096, max_seq: int = 4096) -> dict[str, dict[int, Any]]:
        """``dynamic_shapes`` for ``torch.onnx.export(..., dynamo=True)``, keyed by the forward() parameter.

        The example input must have size >= 2 on each dynamic axis: torch 2.13's exporter silently specialises an
        axis of size 1 and writes a graph that only accepts 1 there (see ``example_input``).
        """
        bounds = {"batch": max_batch, "seq": max_seq}
        return {
            self.name: {i: torch.export.Dim(self.shape[i], min=1, max=bounds[self.shape[i]]) for i in self.dynamic_axes}
        }

    def onnx_dynamic_axes(self) -> dict[str, dict[int, str]]:
        """``dynamic_axes`` for the TorchScript exporter (``dynamo=False``), inputs and output."""
        inputs = {i: self.shape[i] for i in self.dynamic_axes}
        # Logits keep the batch axis and, for per-token outputs, the sequence axis.
        outputs = {i: self.shape[i] for i in self.dynamic_axes if i < self.output_rank - 1}
        return {self.name: inputs, self.output_name: outputs}


_TEXT_SPEC = InputSpec("input_ids", "int64", ("batch", "seq"), (0, 1), output_rank=2)
_SPECS: dict[str, InputSpec] = {
    "text_classification": _TEXT_SPEC,
    "multi_label": _TEXT_SPEC,
    "spans": InputSpec("input_ids", "int64", ("batch", "seq"), (0, 1), output_rank=3),
    "image_classification": InputSpec(
        "pixels", "float32", ("batch", "channels", "height", "width"), (0,), output_rank=2
    ),
}


def _models_for(task: str) -> dict[str, type[nn.Module]]:
    if task not in MODELS:
        raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[task]


def input_spec(task: str) -> InputSpec:
    """The input and output description shared by every model of ``task``.

    Args:
        task: A key of ``MODELS``.

    Returns:
        The task's ``InputSpec``.

    Raises:
        ValueError: ``task`` is unknown; the message lists the valid tasks.
    """
    _models_for(task)
    return _SPECS[task]


def example_input(
    task: str, *, batch: int = 2, seq: int = 8, vocab_size: int = 2, image_channels: int = 1, image_size: int = 28
) -> torch.Tensor:
    """A random input for ``task``'s models, e.g. the example for ONNX export.

    Args:
        task: A key of ``MODELS``.
        batch: Batch size; keep it >= 2 for export so the batch axis stays dynamic.
        seq: Sequence length of text inputs; keep it >= 2 for export.
        vocab_size: Token ids are drawn from [1, vocab_size), so the example has no padding.
        image_channels: Channels of image inputs.
        image_size: Height and width of image inputs.

    Returns:
        (B, T) int64 token ids or (B, C, H, W) float32 pixels in [0, 1].
    """
    if input_spec(task).name == "pixels":
        return torch.rand(batch, image_channels, image_size, image_size)
    return torch.randint(1, max(vocab_size, 2), (batch, seq))


def build_model(task: str, config: ModelConfig, num_outputs: int, vocab_size: int = 0) -> nn.Module:
    """Build a fresh model of the zoo from its config; the model reads the fields it uses.

    Args:
        task: A key of ``MODELS``.
        config: The model's hyperparameters; ``config.name`` is a model name under ``MODELS[task]``.
        num_outputs: Logits per example (classes or labels) or per token (tags).
        vocab_size: Token ids the text models embed (id 0 is padding); image models take none.

    Returns:
        The model, in training mode. A bag of embeddings with ``subword_buckets`` has an empty subword table:
        fill it with ``model.set_subwords(vocab.tokens)`` (``training.tasks.Task.new_model`` does).

    Raises:
        ValueError: Unknown task or model name (the message lists the valid choices), or unusable sizes.
    """
    models = _models_for(task)
    if config.name not in models:
        raise ValueError(f"unknown model {config.name!r} for task {task!r}; choose one of: {', '.join(models)}")
    if num_outputs < 1:
        raise ValueError(f"num_outputs must be at least 1, got {num_outputs}")
    cls = models[config.name]
    if input_spec(task).name == "pixels":
        return cls(config, num_outputs)
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2 (padding plus one token) for {task!r}, got {vocab_size}")
    return cls(config, vocab_size, num_outputs)
