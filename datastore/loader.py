"""The loader researchers train from: any dataset version, by name, as torch Datasets and DataLoaders.

Reads through DVC's Python API, so it works on a machine that has only the data repository (or its git
URL) and the DVC remote: no database, no Django. Every file read is checked against the MD5 that DVC
recorded for it; a damaged copy in the local DVC cache is dropped and fetched again from the remote.

    >>> from datastore.loader import load
    >>> ds = load("sentiment-v1", repo=".fsml/data")
    >>> train = ds.text_dataset("train", vocab=ds.build_vocab())

Versions larger than memory: ``pull`` one to a folder, then ``datastore.streaming.StreamingTextDataset``
reads its JSONL files line by line (each DataLoader worker takes its own share of the lines).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from datastore.splits import SPLITS
from modelpack.text import Vocabulary, pad

log = logging.getLogger(__name__)
TAG_PREFIX = "dataset/"


class DatasetError(Exception):
    """A dataset version cannot be read; ``reason`` says why."""

    def __init__(self, name: str, repo: str, reason: str) -> None:
        super().__init__(f"dataset version {name!r} in {repo}: {reason}")
        self.name, self.repo, self.reason = name, repo, reason


class DatasetNotFound(DatasetError, LookupError):
    """No dataset version of that name in the data repository."""

    def __init__(self, name: str, repo: str, reason: str) -> None:
        DatasetError.__init__(self, name, repo, f"not found: {reason}")


class DatasetCorrupted(DatasetError):
    """A file of the version does not match the checksum DVC recorded, and no good copy could be fetched."""


def dataset_path(name: str) -> str:
    """Folder of a dataset version inside the data repository."""
    return f"datasets/{name}"


def dataset_tag(name: str) -> str:
    """Git tag that pins a dataset version."""
    return f"{TAG_PREFIX}{name}"


@dataclass
class LoadedVersion:
    """One dataset version: its manifest, its records per split and, for image data, the image bytes."""

    name: str
    manifest: dict[str, Any]
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    images: dict[str, bytes] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def task_type(self) -> str:
        return str(self.manifest["task_type"])

    def build_vocab(self, min_freq: int = 2, max_size: int = 30_000) -> Vocabulary:
        """Vocabulary from the training split only (no leakage from val/test)."""
        return Vocabulary.build((r["text"] for r in self.splits["train"]), min_freq, max_size)

    def text_dataset(self, split: str, vocab: Vocabulary, max_len: int = 64) -> TextClassificationDataset:
        return TextClassificationDataset(self.splits[split], vocab, self.labels, max_len)

    def image_dataset(self, split: str, size: int = 28, channels: int = 1) -> ImageClassificationDataset:
        return ImageClassificationDataset(self.splits[split], self.images, self.labels, size, channels)


class _Reader:
    """Verified reads of one version through DVC's file system (at the version's tag by default)."""

    def __init__(self, name: str, repo: str, rev: str | None) -> None:
        # local: DVC takes a third of a second to import; the web app imports this module for dataset paths
        from dvc.api import DVCFileSystem

        self.name, self.repo, self.base, self.rev = name, repo, dataset_path(name), rev or dataset_tag(name)
        self.fs = DVCFileSystem(repo, rev=self.rev)  # opens the repository on first use

    def _error(self, rel: str, exc: Exception) -> DatasetError:
        """The error a failed read means to the user: an unknown version, a missing file, or another failure."""
        # local: DVC takes a third of a second to import; the web app imports this module for dataset paths
        from dvc.scm import RevError

        if isinstance(exc, RevError):
            return DatasetNotFound(self.name, self.repo, f"no revision {self.rev!r} in the data repository")
        if isinstance(exc, FileNotFoundError) and "No storage files available" in str(exc):
            return DatasetError(
                self.name,
                self.repo,
                f"{rel} is neither in the local DVC cache nor on the DVC remote (is it reachable?)",
            )
        if isinstance(exc, FileNotFoundError):
            return DatasetNotFound(self.name, self.repo, f"{rel} is missing at revision {self.rev!r}")
        return DatasetError(self.name, self.repo, f"{rel} cannot be read: {_first_line(exc)}")

    def read(self, rel: str) -> bytes:
        """The bytes of ``rel`` (relative to the version's folder), checked against DVC's MD5."""
        path = f"{self.base}/{rel}"
        try:
            info = self.fs.info(path)
            data = self.fs.cat_file(path)
        except Exception as exc:  # DVC and scmrepo raise many types; _error sorts them for the user
            raise self._error(rel, exc) from exc
        expected = info.get("md5")
        if expected and hashlib.md5(data).hexdigest() != expected:
            data = self._refetch(path, rel, info, expected)
        return data

    def _refetch(self, path: str, rel: str, info: dict[str, Any], expected: str) -> bytes:
        """The local cache copy is damaged: drop it and read again, which fetches from the remote."""
        # local: DVC takes a third of a second to import; the web app imports this module for dataset paths
        from dvc.api import DVCFileSystem

        cached = Path(info["repo"].cache.local.oid_to_path(expected))
        log.warning("dataset %s: %s in the DVC cache (%s) is damaged; fetching it again", self.name, rel, cached)
        cached.unlink(missing_ok=True)
        try:
            data = DVCFileSystem(self.repo, rev=self.rev).cat_file(path)
        except Exception as exc:
            raise DatasetCorrupted(
                self.name,
                self.repo,
                f"{rel} in the DVC cache was damaged ({cached}; removed) and the remote cannot supply it: "
                f"{_first_line(exc)}",
            ) from exc
        if hashlib.md5(data).hexdigest() != expected:
            raise DatasetCorrupted(
                self.name, self.repo, f"{rel} does not match its checksum {expected}, remote included"
            )
        return data

    def files(self) -> list[str]:
        """Every file of the version, relative to its folder, sorted."""
        try:
            found = self.fs.find(self.base)
        except Exception as exc:
            raise self._error(self.base, exc) from exc
        if not found:
            raise DatasetNotFound(self.name, self.repo, f"{self.base} is empty or absent at this revision")
        return sorted(f[len(self.base) + 1 :] for f in found)

    def manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.read("manifest.json"))
        except ValueError as exc:
            raise DatasetCorrupted(self.name, self.repo, f"manifest.json is not valid JSON: {exc}") from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _records(data: bytes) -> list[dict[str, Any]]:
    # Split on "\n" only: str.splitlines() also splits on U+2028 and friends, which JSON strings may hold.
    return [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]


def load(
    name: str, repo: str, rev: str | None = None, splits: tuple[str, ...] = SPLITS, images: bool = True
) -> LoadedVersion:
    """Fetch a dataset version's manifest, split files and (for image data) images through DVC.

    Args:
        name: the dataset version name.
        repo: path or git URL of the data repository.
        rev: git revision; defaults to the version's tag.
        images: read the image files of image records too.

    Raises:
        DatasetNotFound: no such version (or file) at that revision.
        DatasetCorrupted: a file is damaged and the remote cannot supply a good copy.
        DatasetError: anything else that keeps the version from being read (a missing remote, say).
    """
    reader = _Reader(name, repo, rev)
    loaded = LoadedVersion(name, reader.manifest())
    for split in splits:
        loaded.splits[split] = _records(reader.read(f"{split}.jsonl"))
    if images:
        wanted = sorted({r["image"] for rows in loaded.splits.values() for r in rows if r.get("image")})
        loaded.images = {rel: reader.read(rel) for rel in wanted}
    return loaded


def pull(name: str, repo: str, out: Path, rev: str | None = None) -> Path:
    """Write every file of a version into ``out`` (checked against DVC's MD5s) and return ``out``.

    Files are written to a temporary folder first and moved into place, so ``out`` is never half written.
    """
    reader = _Reader(name, repo, rev)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(name, repo, f"{out} exists and is not empty")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        for rel in reader.files():
            target = Path(tmp) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(reader.read(rel))
        if out.exists():
            out.rmdir()
        shutil.move(tmp, out)
    return out


def list_versions(repo: str) -> list[str]:
    """Names of the dataset versions tagged in a local data repository, sorted."""
    # local: scmrepo (DVC's git library) is slow to import; the web app imports this module for dataset paths
    from scmrepo.git import Git

    scm = Git(repo)
    try:
        return sorted(ref[len("refs/tags/" + TAG_PREFIX) :] for ref in scm.iter_refs(base="refs/tags/" + TAG_PREFIX))
    finally:
        scm.close()


class TextClassificationDataset:
    """Token ids and label index per record; a ``torch.utils.data.Dataset`` by protocol."""

    def __init__(self, records: list[dict[str, Any]], vocab: Vocabulary, labels: list[str], max_len: int):
        self.records, self.vocab, self.max_len = records, vocab, max_len
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> tuple[list[int], int]:
        record = self.records[idx]
        return self.vocab.encode(record["text"], self.max_len), self.label_index[record["label"]]


def collate_text(batch: list[tuple[list[int], int]]) -> tuple[Any, Any]:
    """Right-pad token ids with 0. Returns ids (B, T) int64 and labels (B,) int64 tensors."""
    # local: torch takes over a second to import; the web app imports this module for dataset paths
    import torch

    ids = pad([tokens for tokens, _ in batch])
    labels = np.array([label for _, label in batch], dtype=np.int64)
    return torch.from_numpy(ids), torch.from_numpy(labels)


def dataloader(dataset: Any, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0) -> Any:
    """A DataLoader over a text dataset (``TextClassificationDataset``, or ``StreamingTextDataset`` unshuffled)
    with a seeded shuffle and worker processes when asked. ``Any``: this module imports torch only when used."""
    # local: torch takes over a second to import; the web app imports this module for dataset paths
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate_text,  # type: ignore[arg-type]
        generator=generator,
        num_workers=num_workers,
    )


class ImageClassificationDataset:
    """Decoded images (float32, C x size x size, scaled to [0, 1]) and label indexes."""

    def __init__(
        self, records: list[dict[str, Any]], images: dict[str, bytes], labels: list[str], size: int, channels: int
    ) -> None:
        missing = [r["id"] for r in records if r.get("image") not in images]
        if missing:
            raise ValueError(f"{len(missing)} records have no image (first: {missing[0]}); load with images=True")
        self.records, self.images, self.size, self.channels = records, images, size, channels
        self.label_index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, int]:
        record = self.records[idx]
        with Image.open(io.BytesIO(self.images[record["image"]])) as opened:
            img = opened.convert("L" if self.channels == 1 else "RGB").resize((self.size, self.size))
            pixels = np.asarray(img, dtype=np.float32) / 255.0
        pixels = pixels[None] if self.channels == 1 else pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels), self.label_index[record["label"]]
