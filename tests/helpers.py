"""Shared test helpers: small real data and models made without the network, stored items, the ``fsml`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.http import HttpResponseBase, StreamingHttpResponse
from django.utils import timezone

from annotation.services import next_task
from datastore import services
from datastore.loader import LoadedVersion
from datastore.models import CrawlJob
from datastore.splits import SPLITS, split_of
from deploy.demo.corpora import sentiment_corpus
from training.config import ModelConfig, TrainConfig

if TYPE_CHECKING:
    from datastore.models import Assignment, ModelVersion, Project

FSML = str(Path(sys.executable).with_name("fsml"))  # the console script of this virtualenv


def corpus_version(n: int = 1500, name: str = "corpus") -> LoadedVersion:
    """A dataset version held in memory, split the way snapshots split."""
    splits: dict[str, list[dict]] = {s: [] for s in SPLITS}
    seen = set()
    for row in sentiment_corpus(limit=n, seed=1):
        key = services.sha256_text(row.text)
        if key in seen:
            continue
        seen.add(key)
        splits[split_of(key)].append({"id": key, "text": row.text, "label": row.label, "url": ""})
    manifest = {"labels": ["negative", "neutral", "positive"], "task_type": "text_classification"}
    return LoadedVersion(name, manifest, splits)


def gold_rows(limit: int, seed: int) -> list[dict[str, str]]:
    """Corpus texts with their labels as import records, one per text: the corpus repeats some texts, at times
    under another label, and an import refuses such conflicts, so the first label of a text is kept."""
    first: dict[str, str] = {}
    for row in sentiment_corpus(limit=limit, seed=seed):
        first.setdefault(row.text, row.label)
    return [{"text": text, "value": label} for text, label in first.items()]


def small_config(model: ModelConfig | None = None, **values: Any) -> TrainConfig:
    """A training config for the in-memory corpus: 3 epochs of batches of 32 of ``model`` (the bag of embeddings
    unless given), with ``values`` set."""
    return TrainConfig(
        **{"dataset": "corpus", "model": model or ModelConfig(), "epochs": 3, "batch_size": 32, **values}
    )


def build_model_archive(out_dir: Path, n: int = 600, epochs: int = 2) -> tuple[Path, str, dict]:
    """Train, export and package a small real model. Returns (archive, sha256, manifest)."""
    # Local: torch and the training stack load only in the runs that train a model.
    from training.export import export
    from training.package import build_archive
    from training.train import train

    data = corpus_version(n)
    result = train(TrainConfig(dataset="corpus", epochs=epochs), data)
    export(result, out_dir / "export", data, int8=False)
    archive = out_dir / "model.tar.gz"
    sha, manifest = build_archive(out_dir / "export", archive, "sentiment-test", 1, "corpus", {})
    return archive, sha, manifest


def claim_task(project: Project, user: Any) -> Assignment:
    """``next_task`` where the test expects a task: fails the test when the queue hands out none."""
    assignment = next_task(project, user)
    assert assignment is not None, f"{user} was handed no task"
    return assignment


def streamed_body(response: HttpResponseBase) -> bytes:
    """The whole body of a streamed response (a file, an export); fails the test for any other response."""
    assert isinstance(response, StreamingHttpResponse), f"not a streamed response: {type(response).__name__}"
    return b"".join(cast(Iterator[bytes], response.streaming_content))  # the test client is WSGI: never async


def stored_items(n: int, text: str = "sample text number {i}") -> None:
    """Store ``n`` text items from one source through the crawler's storage service."""
    source = services.get_or_create_source("s", "http://example.test/")
    job = CrawlJob.objects.create(source=source, spider="site")
    now = timezone.now()
    services.store_items(
        job,
        [
            {
                "url": f"http://example.test/{i}",
                "canonical_url": f"http://example.test/{i}",
                "text": text.format(i=i),
                "fetched_at": now,
            }
            for i in range(n)
        ],
    )


def fsml(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the ``fsml`` console script as a user runs it, in this process's environment unless ``env`` is given."""
    return subprocess.run([FSML, *args], capture_output=True, text=True, timeout=timeout, env=env or os.environ.copy())


def register_versions(name: str, archives: list[tuple[Path, str, dict]]) -> list[ModelVersion]:
    """Register each (archive, sha256, manifest) as the next version (1, 2, ...) of text-classification model
    ``name``."""
    return [
        services.register_model_version(name, "text_classification", str(path), sha, manifest, None, version=i)
        for i, (path, sha, manifest) in enumerate(archives, start=1)
    ]
