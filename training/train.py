"""The training loop for every task type: seeded, resumable, early-stopping, and the same script under
``torchrun`` (DistributedDataParallel; gloo on CPU, NCCL on CUDA).

``train`` runs the steps in order: ``prepare_run`` (labels, teacher, task and vocabulary, datasets, model,
optimiser), ``resume_run`` (the run folder's last state), then per epoch ``train_epoch``, ``validate`` (the best
weights kept, epochs without progress counted) and ``save_state``, and at the end ``finish`` (the best weights
back in, the checkpoint and the curve written).

A run folder holds ``checkpoint/`` (the best weights, vocabulary, config and history: what export reads),
``state/last.pt`` (everything needed to resume: weights, optimiser, schedule, random states, early-stopping
counters), ``metrics.jsonl`` (one row per epoch), ``tensorboard/`` and ``training_curve.png``.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from datastore.loader import LoadedVersion, load
from modelpack.text import Vocabulary
from training.checkpoint import CHECKPOINT_FILE, TrainResult, load_checkpoint, save_checkpoint
from training.config import TrainConfig, flatten
from training.distributed import Dist, init_distributed
from training.optim import make_optimiser, make_scheduler, wide_penalty
from training.record import CURVE_FILE, EpochLog, plot_history
from training.tasks import RecordsDataset, Task, prepare

STATE_FILE = "last.pt"
RESUMABLE = {"epochs", "patience", "device", "num_workers", "data_repo"}  # may change between a run and its resume


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says why."""


@dataclass
class Run:
    """What one run trains with, built once by ``prepare_run``."""

    config: TrainConfig
    task: Task
    train_set: RecordsDataset
    val_loader: DataLoader[Any]
    model: nn.Module
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    teacher: nn.Module | None
    dist: Dist


@dataclass
class Progress:
    """Where a run stands after its last finished epoch: what the loop carries and ``state/last.pt`` keeps."""

    epoch: int = 0  # epochs finished
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = -math.inf
    best_state: dict[str, torch.Tensor] | None = None  # the weights of the best validation epoch
    bad_epochs: int = 0  # epochs since the best one


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

    Raises:
        TrainingError: the run cannot start (no training or no validation records, a teacher for other labels,
            nothing or another config to resume).
    """
    dist = init_distributed(config.device)
    seed_everything(config.seed)
    if data is None:
        data = load(config.dataset, repo=config.data_repo, images=config.task == "image_classification")
    run = prepare_run(config, data, dist)
    state_path = out_dir / "state" / STATE_FILE if out_dir is not None else None
    progress = resume_run(run, state_path) if resume else Progress()
    net = nn.parallel.DistributedDataParallel(run.model) if dist.world > 1 else run.model
    epoch_log = EpochLog(out_dir) if out_dir is not None and dist.main else None
    stopped_early = False
    for epoch in range(progress.epoch, config.epochs):
        if config.patience and progress.bad_epochs >= config.patience:
            stopped_early = True
            break
        began = time.perf_counter()
        row = {"epoch": epoch + 1, **train_epoch(run, net, epoch)}
        row |= {f"val_{k}": v for k, v in validate(run, progress).items()}
        row["seconds"] = round(time.perf_counter() - began, 3)
        progress.epoch = epoch + 1
        progress.history.append(row)
        if dist.main:
            if on_epoch:
                on_epoch(row)
            if epoch_log is not None:
                epoch_log.add(row)
            if state_path is not None:
                save_state(run, progress, state_path)
        if stop_after is not None and epoch + 1 >= stop_after:
            break
    if epoch_log is not None:
        epoch_log.close()
    return finish(run, progress, stopped_early, out_dir)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_run(config: TrainConfig, data: LoadedVersion, dist: Dist) -> Run:
    """Fill the config's labels from the version, load the teacher (if any), build the task (the vocabulary from
    the train split, or the teacher's), the datasets, the model of ``config.model``, its optimiser and schedule.

    Raises:
        TrainingError: the version has no training or no validation records, or the teacher cannot teach this run.
    """
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
    if len(val_set) == 0:  # every epoch would score 0.000 and the first one would be kept as the best
        raise TrainingError(
            f"dataset {data.name} has no validation records: the best epoch is chosen on the val split and the "
            "export is checked on it; make a version with some (fsml dataset snapshot PROJECT --name NAME "
            "--val-pct 10, or a val split in the import)"
        )
    model = task.new_model().to(config.device)
    optimiser = make_optimiser(config, model)
    val_loader = DataLoader(val_set, batch_size=256, sampler=SequentialSampler(val_set), collate_fn=task.collate)
    return Run(config, task, train_set, val_loader, model, optimiser, make_scheduler(config, optimiser), teacher, dist)


def load_teacher(path: str, device: str) -> tuple[nn.Module, Vocabulary | None, TrainConfig]:
    """A trained run's model to distil from (its ``checkpoint/`` folder or the run folder).

    Raises:
        TrainingError: no checkpoint there.
    """
    folder = Path(path)
    folder = folder / "checkpoint" if (folder / "checkpoint").is_dir() else folder
    if not (folder / CHECKPOINT_FILE).is_file():
        raise TrainingError(f"teacher {path}: no {CHECKPOINT_FILE} (give a run folder written by fsml train)")
    teacher = load_checkpoint(folder)
    return teacher.model.to(device).eval(), teacher.vocab, teacher.config


def resume_run(run: Run, state_path: Path | None) -> Progress:
    """Load the run folder's last state into the model, optimiser and schedule, and restore the random states, so
    the rest of the run is the one an uninterrupted run would have had.

    Raises:
        TrainingError: no saved state, or one saved with another config (beyond the RESUMABLE keys).
    """
    if state_path is None or not state_path.is_file():
        raise TrainingError(f"nothing to resume: {state_path} does not exist")
    state = torch.load(state_path, map_location=run.config.device, weights_only=False)
    saved, now = flatten(state["config"]), flatten(run.config.as_dict())
    changed = sorted(k for k in saved.keys() | now.keys() if k not in RESUMABLE and saved.get(k) != now.get(k))
    if changed:
        raise TrainingError(f"the saved run used another config ({', '.join(changed)}); resume with the same one")
    run.model.load_state_dict(state["model"])
    run.optimiser.load_state_dict(state["optimiser"])
    run.scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"])
    return Progress(**{f.name: state[f.name] for f in fields(Progress)})


def train_epoch(run: Run, net: nn.Module, epoch: int) -> dict[str, float]:
    """One pass over the training split (this rank's share of it under torchrun), then one step of the schedule.

    Args:
        run: what ``prepare_run`` built.
        net: ``run.model``, or its DistributedDataParallel wrapper under torchrun.
        epoch: the 0-based epoch; with the seed, it alone decides the shuffle, so a resumed run sees the same
            batches.

    Returns:
        ``train_loss`` (the mean over batches) and ``lr`` (the learning rate the epoch ran at).
    """
    config = run.config
    if run.dist.world > 1:
        shared: DistributedSampler[int] = DistributedSampler(
            run.train_set, run.dist.world, run.dist.rank, shuffle=True, seed=config.seed
        )
        shared.set_epoch(epoch)
        sampler: Sampler[int] = shared
    else:
        sampler = RandomSampler(run.train_set, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
    loader = DataLoader(
        run.train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=run.task.collate,
        num_workers=config.num_workers,
    )
    net.train()
    total_loss, batches = 0.0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(config.device), targets.to(config.device)
        run.optimiser.zero_grad()
        loss = batch_loss(run, net(inputs), inputs, targets)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        run.optimiser.step()
        total_loss, batches = total_loss + float(loss.detach()), batches + 1
    lr = run.optimiser.param_groups[0]["lr"]
    run.scheduler.step()
    return {"train_loss": total_loss / max(batches, 1), "lr": lr}


def batch_loss(run: Run, logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The task's loss on a batch, plus the wide term's L2 penalty and the teacher's soft labels where the config
    asks for them."""
    loss = run.task.loss(logits, targets)
    if (penalty := wide_penalty(run.config, run.model, len(run.train_set))) is not None:
        loss = loss + penalty
    if run.teacher is not None:
        with torch.no_grad():
            soft_targets = run.teacher(inputs)
        a = run.config.distill_alpha
        loss = (1 - a) * loss + a * run.task.distill_loss(logits, soft_targets, targets)
    return loss


def validate(run: Run, progress: Progress) -> dict[str, float]:
    """Score the validation split, keep the weights if the score is the best so far, else count the epoch as one
    without progress; returns the split's metrics.

    Every rank scores the whole split: the same numbers everywhere, so early stopping agrees across ranks without
    a broadcast.
    """
    val = run.task.evaluate(run.model, run.val_loader, run.config.device)
    if val["score"] > progress.best_score:
        progress.best_score, progress.bad_epochs = val["score"], 0
        progress.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    else:
        progress.bad_epochs += 1
    return val


def save_state(run: Run, progress: Progress, path: Path) -> None:
    """Write everything ``resume_run`` needs, atomically: a crash mid-write never leaves a torn state behind."""
    state = {
        **vars(progress),
        "model": run.model.state_dict(),
        "optimiser": run.optimiser.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        "config": run.config.as_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def finish(run: Run, progress: Progress, stopped_early: bool, out_dir: Path | None) -> TrainResult:
    """Put the best epoch's weights back and, on rank 0 with a run folder, write the checkpoint and the training
    curve; under torchrun the other ranks wait until it is written."""
    if progress.best_state is not None:
        run.model.load_state_dict(progress.best_state)
    run.model.eval()
    result = TrainResult(run.model, run.task.vocab, run.config, progress.history, run.task, stopped_early)
    if out_dir is not None and run.dist.main:
        save_checkpoint(result, out_dir / "checkpoint")
        plot_history(progress.history, out_dir / CURVE_FILE)
    if run.dist.world > 1:
        torch.distributed.barrier()
    return result
