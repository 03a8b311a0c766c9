"""Global magnitude pruning with ``torch.nn.utils.prune``, and honest size and latency measurements.

Two ways to prune:

- ``prune_magnitude`` prunes and makes it permanent at once: the weights hold zeros and nothing else
  remembers them. Fine-tuning afterwards will move the zeros away again.
- ``prune_with_masks`` leaves torch's reparametrisation in place (``weight = weight_orig * weight_mask``,
  recomputed before every forward), so fine-tuning keeps pruned weights at zero. Call ``make_permanent``
  before saving for serving or exporting to ONNX.

Unstructured zeros do not make a dense tensor smaller or faster: ``state_dict`` bytes and CPU latency stay
about the same. They only pay off when the file is compressed (zlib size is reported) or run by a sparse
kernel. Every report gives dense and compressed sizes side by side for that reason.

Embeddings are left out of the pruning pool by default. Global pruning ranks every weight on one scale,
and ``nn.Embedding`` starts at N(0, 1) while ``nn.Linear`` starts near 1/sqrt(fan_in): with both in one
pool the threshold is set by the embeddings, and the small classifier layers are pruned to nothing. An
embedding row is also a whole token's meaning, which unstructured zeros damage in a way that is hard to
see. Pass ``layers=(..., nn.Embedding)`` to include them anyway.
"""

from __future__ import annotations

import io
import statistics
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils import prune

DEFAULT_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)


class PruneError(ValueError):
    """A pruning request is invalid; carries the offending field and value."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


@dataclass
class PruneReport:
    """What pruning did to a model.

    Attributes:
        amount: Fraction of the pooled weights asked to be zeroed.
        layer_sparsity: Fraction of zeros in each pruned weight, by qualified name (``"fc.weight"``).
        overall_sparsity: Fraction of zeros across all pruned weights together.
        parameters: Number of effective parameters in the whole model (biases and unpruned layers included).
        nonzero: How many of those are non-zero.
        dense_bytes_before: ``torch.save`` size of the state_dict before pruning.
        compressed_bytes_before: zlib-compressed size of the same bytes.
        dense_bytes: ``torch.save`` size after pruning (with masks in place it holds ``weight_orig`` and
            ``weight_mask``, so it is larger than before).
        compressed_bytes: zlib-compressed size after pruning.
        permanent: False while the masks are still attached.
        warnings: Layers pruned to over 99% zeros (global pruning can empty a layer whose weights are small).
    """

    amount: float
    layer_sparsity: dict[str, float]
    overall_sparsity: float
    parameters: int
    nonzero: int
    dense_bytes_before: int
    compressed_bytes_before: int
    dense_bytes: int
    compressed_bytes: int
    permanent: bool
    warnings: list[str] = field(default_factory=list)


def _effective_tensors(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Parameters as the forward pass sees them: ``weight_orig`` is replaced by the masked ``weight``."""
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if name.endswith("_orig"):
                name = name[: -len("_orig")]
                param = getattr(module, name)
            yield (f"{module_name}.{name}" if module_name else name), param


def state_dict_bytes(model: nn.Module) -> tuple[int, int]:
    """Size of ``torch.save(model.state_dict())`` dense and zlib-compressed (level 6).

    Args:
        model: Any module.

    Returns:
        ``(dense_bytes, compressed_bytes)``.
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    raw = buffer.getvalue()
    return len(raw), len(zlib.compress(raw, 6))


def _pool(model: nn.Module, layers: tuple[type[nn.Module], ...]) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, layers) and m.weight is not None]


def _report(model: nn.Module, amount: float, pool: list[tuple[str, nn.Module]], before: tuple[int, int]) -> PruneReport:
    layer_sparsity: dict[str, float] = {}
    zeros = total = 0
    for name, module in pool:
        weight = cast(torch.Tensor, module.weight).detach()  # a pruned module's weight is a plain attribute
        layer_zeros = int((weight == 0).sum())
        layer_sparsity[f"{name}.weight"] = layer_zeros / weight.numel()
        zeros, total = zeros + layer_zeros, total + weight.numel()
    tensors = [t.detach() for _, t in _effective_tensors(model)]
    dense, compressed = state_dict_bytes(model)
    warnings = [f"{name} is {s:.1%} zeros" for name, s in layer_sparsity.items() if s > 0.99]
    return PruneReport(
        amount=amount,
        layer_sparsity=layer_sparsity,
        overall_sparsity=zeros / total if total else 0.0,
        parameters=sum(t.numel() for t in tensors),
        nonzero=sum(int(t.count_nonzero()) for t in tensors),
        dense_bytes_before=before[0],
        compressed_bytes_before=before[1],
        dense_bytes=dense,
        compressed_bytes=compressed,
        permanent=not any(prune.is_pruned(m) for _, m in pool),
        warnings=warnings,
    )


def prune_with_masks(
    model: nn.Module, amount: float, layers: tuple[type[nn.Module], ...] = DEFAULT_LAYERS
) -> PruneReport:
    """Globally prune the smallest-magnitude weights and keep the masks attached for fine-tuning.

    Biases are not pruned (few parameters, and zeroing them shifts every output of the unit).

    Args:
        model: The model, pruned in place.
        amount: Fraction of the pooled weights to zero, ``0 <= amount < 1``.
        layers: Module types whose ``weight`` joins the global pool (see the module docstring on embeddings).

    Returns:
        A ``PruneReport`` with ``permanent=False``.

    Raises:
        PruneError: ``amount`` is out of range, or the model has no layer of the given types.
    """
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 <= amount < 1:
        raise PruneError("amount", amount, "must be a fraction with 0 <= amount < 1")
    pool = _pool(model, layers)
    if not pool:
        raise PruneError("layers", [t.__name__ for t in layers], "the model has no such layers to prune")
    before = state_dict_bytes(model)
    prune.global_unstructured(
        [(module, "weight") for _, module in pool], pruning_method=prune.L1Unstructured, amount=float(amount)
    )
    return _report(model, float(amount), pool, before)


def make_permanent(model: nn.Module) -> int:
    """Remove every pruning reparametrisation, baking the masks into plain ``weight`` parameters.

    Needed before ``torch.save`` for serving and before ONNX export. After this, training can revive
    pruned weights; keep the masks (``prune_with_masks``) while fine-tuning.

    Args:
        model: The model, changed in place.

    Returns:
        How many pruned tensors were made permanent (0 if none were pruned).
    """
    removed = 0
    for module in model.modules():
        names = [h._tensor_name for h in module._forward_pre_hooks.values() if isinstance(h, prune.BasePruningMethod)]
        for name in names:
            prune.remove(module, name)
            removed += 1
    return removed


def prune_magnitude(
    model: nn.Module, amount: float, layers: tuple[type[nn.Module], ...] = DEFAULT_LAYERS
) -> PruneReport:
    """Globally L1-prune ``amount`` of the weights of ``layers`` and make it permanent.

    Args:
        model: The model, pruned in place.
        amount: Fraction of the pooled weights to zero, ``0 <= amount < 1``.
        layers: Module types whose ``weight`` joins the global pool.

    Returns:
        A ``PruneReport`` with per-layer and overall sparsity, parameter and non-zero counts, and dense and
        compressed state_dict sizes before and after.

    Raises:
        PruneError: ``amount`` is out of range, or the model has no layer of the given types.
    """
    masked = prune_with_masks(model, amount, layers)
    make_permanent(model)
    report = _report(
        model, masked.amount, _pool(model, layers), (masked.dense_bytes_before, masked.compressed_bytes_before)
    )
    return report


def measure(
    model: nn.Module, example_inputs: tuple[Any, ...] | torch.Tensor, repeats: int = 20, warmup: int = 3
) -> dict[str, float | int]:
    """Size and median CPU latency of a model on one example input.

    Runs under ``torch.inference_mode`` in eval mode (restoring the previous mode after), with the
    process's ``torch.get_num_threads()`` left as it is so numbers compare with the caller's other runs.

    Args:
        model: The model (on CPU).
        example_inputs: One tensor or a tuple of positional inputs.
        repeats: Timed calls; the median is reported.
        warmup: Untimed calls first (allocator and kernel selection warm-up).

    Returns:
        ``parameters``, ``nonzero_fraction``, ``dense_bytes``, ``compressed_bytes``, ``latency_ms``
        (median), ``threads``.

    Raises:
        PruneError: ``repeats`` is below 1.
    """
    if repeats < 1:
        raise PruneError("repeats", repeats, "must be at least 1")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    tensors = [t.detach() for _, t in _effective_tensors(model)]
    parameters = sum(t.numel() for t in tensors)
    nonzero = sum(int(t.count_nonzero()) for t in tensors)
    dense, compressed = state_dict_bytes(model)
    was_training = model.training
    model.eval()
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(*inputs)
            for _ in range(repeats):
                start = time.perf_counter()
                model(*inputs)
                times.append((time.perf_counter() - start) * 1000)
    finally:
        model.train(was_training)
    return {
        "parameters": parameters,
        "nonzero_fraction": nonzero / parameters if parameters else 0.0,
        "dense_bytes": dense,
        "compressed_bytes": compressed,
        "latency_ms": statistics.median(times),
        "threads": torch.get_num_threads(),
    }
