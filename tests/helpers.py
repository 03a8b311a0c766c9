"""Shared test helpers: small real data and models, made without the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.http import HttpResponseBase, StreamingHttpResponse

from datastore.loader import LoadedVersion
from datastore.services import sha256_text
from datastore.splits import SPLITS, split_of
from deploy.demo.corpora import sentiment_corpus

if TYPE_CHECKING:
    from datastore.models import Assignment, Project


def corpus_version(n: int = 1500, name: str = "corpus") -> LoadedVersion:
    """A dataset version held in memory, split the way snapshots split."""
    splits: dict[str, list[dict]] = {s: [] for s in SPLITS}
    seen = set()
    for row in sentiment_corpus(limit=n, seed=1):
        key = sha256_text(row.text)
        if key in seen:
            continue
        seen.add(key)
        splits[split_of(key)].append({"id": key, "text": row.text, "label": row.label, "url": ""})
    manifest = {"labels": ["negative", "neutral", "positive"], "task_type": "text_classification"}
    return LoadedVersion(name, manifest, splits)


def build_model_archive(out_dir: Path, n: int = 600, epochs: int = 2) -> tuple[Path, str, dict]:
    """Train, export and package a small real model. Returns (archive, sha256, manifest)."""
    from training.config import TrainConfig
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
    from annotation.services import next_task

    assignment = next_task(project, user)
    assert assignment is not None, f"{user} was handed no task"
    return assignment


def streamed_body(response: HttpResponseBase) -> bytes:
    """The whole body of a streamed response (a file, an export); fails the test for any other response."""
    assert isinstance(response, StreamingHttpResponse), f"not a streamed response: {type(response).__name__}"
    return b"".join(cast(Iterator[bytes], response.streaming_content))  # the test client is WSGI: never async


def stored_items(n: int, text: str = "sample text number {i}") -> None:
    """Store ``n`` text items from one source through the crawler's storage service."""
    from django.utils import timezone

    from datastore import services
    from datastore.models import CrawlJob

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
