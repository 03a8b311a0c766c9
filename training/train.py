"""The training loop for every task type: seeded, resumable, early-stopping, and the same script under
``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

A run folder holds ``checkpoint/`` (the best weights, vocabulary, config and history: what export reads),
``state/last.pt`` (everything needed to resume: weights, optimiser, schedule, random states, early-stopping
counters), ``metrics.jsonl`` (one row per epoch), ``tensorboard/`` and ``training_curve.png``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from datastore.loader import LoadedVersion, load
from modelpack.text import Vocabulary
from training.config import TrainConfig, save_config
from training.models import build_model
from training.tasks import Task, make_task, prepare

log = logging.getLogger(__name__)
STATE_FILE = "last.pt"
RESUMABLE = {"epochs", "patience", "device", "num_workers", "data_repo"}  # may change between a run and its resume


@dataclass
class TrainResult:
    model: nn.Module
    vocab: Vocabulary | None
    config: TrainConfig
    history: list[dict[str, float]]
    task: Task | None = None
    stopped_early: bool = False


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says why."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when torchrun started us (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size())


def model_for(config: TrainConfig, task: Task) -> nn.Module:
    vocab_size = len(task.vocab) if task.vocab is not None else 0
    model = build_model(
        config.task,
        config.model,
        len(task.outputs),
        vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        dropout=config.dropout,
        layers=config.layers,
        heads=config.heads,
        kernel_size=config.kernel_size,
        channels=config.channels,
        max_len=config.max_len,
        image_channels=config.image_channels,
        ngram_buckets=config.ngram_buckets,
        wide=config.wide,
        subword_buckets=config.subword_buckets,
    )
    if config.subword_buckets and task.vocab is not None and hasattr(model, "set_subwords"):
        cast(Any, model).set_subwords(task.vocab.tokens)
    return model


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


@torch.no_grad()
def evaluate_split(model: nn.Module, task: Task, loader: Any, device: str) -> dict[str, float]:
    model.eval()
    predicted, targets, loss_sum, batches = [], [], 0.0, 0
    for inputs, target in loader:
        logits = model(inputs.to(device))
        loss_sum, batches = loss_sum + float(task.loss(logits, target.to(device))), batches + 1
        predicted.append(task.predict(logits))
        targets.append(target.numpy())
    return {"loss": loss_sum / max(batches, 1), **task.metrics(predicted, targets)} if batches else {"score": 0.0}


def load_teacher(path: str, device: str) -> tuple[nn.Module, Vocabulary | None, TrainConfig]:
    """A trained run's model to distil from (its ``checkpoint/`` folder or the run folder)."""
    folder = Path(path)
    folder = folder / "checkpoint" if (folder / "checkpoint").is_dir() else folder
    if not (folder / "checkpoint.pt").is_file():
        raise TrainingError(f"teacher {path}: no checkpoint.pt (give a run folder written by fsml train)")
    teacher = load_checkpoint(folder)
    return teacher.model.to(device).eval(), teacher.vocab, teacher.config


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a torn checkpoint behind


def train(
    config: TrainConfig,
    data: LoadedVersion | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    out_dir: Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``config`` on a dataset version, keeping the weights of the best validation epoch.

    Args:
        config: the run's hyperparameters; ``labels`` is filled from the version.
        data: the version, when the caller already loaded it (else ``load(config.dataset)``).
        on_epoch: called with each epoch's metrics row (rank 0 only).
        out_dir: run folder for the resumable state, metrics, TensorBoard and the plot; None keeps nothing.
        resume: go on from ``out_dir/state/last.pt``; the result equals an uninterrupted run's.
        stop_after: stop after this epoch (as if interrupted); for tests and time-boxed runs.
    """
    dist = init_distributed(config.device)
    seed_everything(config.seed)
    images = config.task == "image_classification"
    data = data or load(config.dataset, repo=config.data_repo, images=images)
    config.labels = data.labels
    teacher, teacher_vocab = None, None
    if config.teacher:
        teacher, teacher_vocab, teacher_config = load_teacher(config.teacher, config.device)
        if teacher_config.task != config.task or teacher_config.labels != data.labels:
            raise TrainingError(f"teacher {config.teacher} was trained for other labels or another task")
    task = prepare(config, data, vocab=teacher_vocab)  # a student reads its teacher's token ids
    train_set, val_set = task.dataset(data, "train"), task.dataset(data, "val")
    if len(train_set) == 0:
        raise TrainingError(f"dataset {data.name} has no training records")
    model = model_for(config, task).to(config.device)
    optimiser = make_optimiser(config, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda e: lr_factor(config, e))
    history: list[dict[str, float]] = []
    best_score, best_state, bad_epochs, start = -math.inf, None, 0, 0
    state_path = out_dir / "state" / STATE_FILE if out_dir is not None else None
    if resume:
        if state_path is None or not state_path.is_file():
            raise TrainingError(f"nothing to resume: {state_path} does not exist")
        state = torch.load(state_path, map_location=config.device, weights_only=False)
        changed = sorted(k for k, v in config.as_dict().items() if k not in RESUMABLE and state["config"].get(k) != v)
        if changed:
            raise TrainingError(f"the saved run used another config ({', '.join(changed)}); resume with the same one")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        history, best_score, best_state, bad_epochs = (
            state["history"],
            state["best_score"],
            state["best_state"],
            state["bad_epochs"],
        )
        start = state["epoch"]
        _set_rng_state(state["rng"])
    net: nn.Module = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(model)
    val_dl = DataLoader(val_set, batch_size=256, sampler=SequentialSampler(val_set), collate_fn=task.collate)
    writer = _writer(out_dir) if out_dir is not None and dist.main else None
    stopped_early = False
    for epoch in range(start, config.epochs):
        if config.patience and bad_epochs >= config.patience:
            stopped_early = True
            break
        began = time.perf_counter()
        # The shuffle depends on (seed, epoch) only, so a resumed run sees the same batches.
        if dist.world > 1:
            sampler: Any = DistributedSampler(train_set, dist.world, dist.rank, shuffle=True, seed=config.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        train_dl = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            collate_fn=task.collate,
            num_workers=config.num_workers,
        )
        net.train()
        total_loss, batches = 0.0, 0
        for inputs, targets in train_dl:
            inputs, targets = inputs.to(config.device), targets.to(config.device)
            optimiser.zero_grad()
            logits = net(inputs)
            loss = task.loss(logits, targets)
            if (penalty := wide_penalty(config, model, len(train_set))) is not None:
                loss = loss + penalty
            if teacher is not None:
                with torch.no_grad():
                    soft_targets = teacher(inputs)
                a = config.distill_alpha
                loss = (1 - a) * loss + a * task.distill_loss(logits, soft_targets, targets)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
            optimiser.step()
            total_loss, batches = total_loss + float(loss.detach()), batches + 1
        lr = optimiser.param_groups[0]["lr"]
        scheduler.step()
        # Every rank scores the whole validation split: the same numbers everywhere, so early stopping
        # agrees across ranks without a broadcast.
        val = evaluate_split(model, task, val_dl, config.device)
        row = {"epoch": epoch + 1, "train_loss": total_loss / max(batches, 1), "lr": lr}
        row |= {f"val_{k}": v for k, v in val.items()}
        row["seconds"] = round(time.perf_counter() - began, 3)
        history.append(row)
        if val["score"] > best_score:
            best_score, bad_epochs = val["score"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if dist.main:
            if on_epoch:
                on_epoch(row)
            if out_dir is not None:
                _record_epoch(out_dir, row, writer)
                state = {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "history": history,
                    "best_score": best_score,
                    "best_state": best_state,
                    "bad_epochs": bad_epochs,
                    "rng": _rng_state(),
                    "config": config.as_dict(),
                }
                _atomic_save(state, state_path)  # type: ignore[arg-type]
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    if writer is not None:
        writer.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result = TrainResult(model, task.vocab, config, history, task, stopped_early)
    if out_dir is not None and dist.main:
        save_checkpoint(result, out_dir / "checkpoint")
        plot_history(history, out_dir / "training_curve.png")
    if dist.world > 1:
        torch.distributed.barrier()  # the other ranks wait until rank 0 has written the checkpoint
    return result


def _writer(out_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; a trimmed install still trains
        log.warning("tensorboard is not installed: no TensorBoard event files")
        return None
    return SummaryWriter(str(out_dir / "tensorboard"))


def _record_epoch(out_dir: Path, row: dict[str, float], writer: Any) -> None:
    with (out_dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    if writer is not None:
        for key, value in row.items():
            if key != "epoch":
                writer.add_scalar(key.replace("_", "/", 1), value, int(row["epoch"]))
        writer.flush()


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Training loss and validation loss/score per epoch, as a PNG."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train loss")
    if "val_loss" in history[0]:
        left.plot(epochs, [row["val_loss"] for row in history], marker="o", label="val loss")
    left.set_xlabel("epoch")
    left.legend()
    right.plot(epochs, [row["val_score"] for row in history], marker="o", color="tab:green")
    right.set_xlabel("epoch")
    right.set_ylabel("validation score")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_checkpoint(result: TrainResult, out_dir: Path) -> Path:
    """Write weights, vocabulary, config and history; return the checkpoint path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "checkpoint.pt"
    torch.save({"state_dict": result.model.state_dict(), "config": result.config.as_dict()}, path)
    if result.vocab is not None:
        result.vocab.save(out_dir / "vocab.json")
    save_config(result.config, out_dir / "config.yaml")
    (out_dir / "history.json").write_text(json.dumps(result.history, indent=2))
    return path


def load_checkpoint(out_dir: Path) -> TrainResult:
    """Rebuild a trained model from ``save_checkpoint``'s folder."""
    saved = torch.load(out_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(saved["config"])
    vocab = Vocabulary.load(out_dir / "vocab.json") if (out_dir / "vocab.json").is_file() else None
    task = make_task(config, config.labels, vocab)
    model = model_for(config, task)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    history = json.loads((out_dir / "history.json").read_text())
    return TrainResult(model, vocab, config, history, task)
