"""The optimiser and the learning-rate schedule a ``TrainConfig`` asks for, and the wide term's own treatment."""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from training.config import TrainConfig


def param_groups(config: TrainConfig, model: nn.Module) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: one, or two when ``wide_lr`` or ``wide_l2`` trains the model's wide
    (linear) term apart, as logistic regression: its own learning rate, and no weight decay under ``wide_l2``
    (``wide_penalty`` regularises it instead)."""
    wide = getattr(model, "wide", None)
    if not isinstance(wide, nn.Module) or not (config.wide_lr or config.wide_l2):
        return [{"params": list(model.parameters())}]
    own = {id(p) for p in wide.parameters()}
    group: dict[str, Any] = {"params": list(wide.parameters()), "lr": config.wide_lr or config.lr}
    if config.wide_l2:
        group["weight_decay"] = 0.0
    return [{"params": [p for p in model.parameters() if id(p) not in own]}, group]


def wide_penalty(config: TrainConfig, model: nn.Module, n_train: int) -> torch.Tensor | None:
    """``wide_l2 * ||W||^2 / n_train`` for the wide term's weights: added to a batch's mean loss, it makes the
    objective logistic regression's (mean log loss + ||W||^2 / (2 C n)) with ``C = 1 / (2 wide_l2)``. Decoupled
    weight decay would shrink the weights by the learning rate's schedule instead, whatever the data says."""
    wide = getattr(model, "wide", None)
    if not config.wide_l2 or not isinstance(wide, nn.Module):
        return None
    return cast(torch.Tensor, config.wide_l2 * sum(p.pow(2).sum() for p in wide.parameters()) / max(n_train, 1))


def make_optimiser(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """``config.optimiser`` over ``param_groups``, with the config's learning rate and weight decay."""
    params = param_groups(config, model)
    if config.optimiser == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimiser == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Multiplier of ``lr`` for a 0-based epoch: linear warm-up, then constant, cosine or step decay."""
    if epoch < config.warmup_epochs:
        return (epoch + 1) / (config.warmup_epochs + 1)
    done = epoch - config.warmup_epochs
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * done / max(config.epochs - config.warmup_epochs, 1)))
    if config.schedule == "step":
        return config.gamma ** (done // max(config.step_size, 1))
    return 1.0


def make_scheduler(config: TrainConfig, optimiser: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-epoch schedule of ``lr_factor``."""
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda epoch: lr_factor(config, epoch))
