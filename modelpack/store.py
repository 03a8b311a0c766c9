"""Where model archives live: a local folder (the default) or an S3-compatible bucket (MinIO in docker-compose).

A model version's ``archive_path`` is the location ``put`` returned: a file path, or ``s3://bucket/key``. Every
process that runs a model (web, workers, evaluation) reads it through ``fetch``, which gives a local file; a worker
on another machine therefore needs the bucket, not a shared disk. Stores never overwrite: a version's archive is
immutable, and loading still checks the archive's SHA-256 against the registry, so a replaced object is refused.

    >>> store = model_store("s3://fsml-models/archives", endpoint="http://minio:9000")
    >>> location = store.put(Path("sentiment-3.tar.gz"), "sentiment/sentiment-3.tar.gz")
    >>> store.fetch(location, Path(".fsml/model-cache/sentiment/3.tar.gz"))
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Protocol

S3_PREFIX = "s3://"


class StoreError(OSError):
    """The store cannot take or give an archive; ``reason`` says why, ``location`` where."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"model store {location}: {reason}")
        self.location, self.reason = location, reason


class ModelStore(Protocol):
    def put(self, local: Path, key: str) -> str:
        """Copy ``local`` to ``key`` (``name/name-version.tar.gz``); returns its location. Refuses to overwrite."""
        ...

    def fetch(self, location: str, dest: Path) -> Path:
        """A local file holding the archive at ``location`` (``dest`` when it had to be downloaded)."""
        ...

    def discard(self, location: str) -> None:
        """Remove an archive this process has just put, whose version was then not recorded."""
        ...


class FolderStore:
    """Archives under a folder, written atomically and never replaced."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def put(self, local: Path, key: str) -> str:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
        os.close(handle)
        staged = Path(name)
        try:
            shutil.copyfile(local, staged)
            try:
                os.link(staged, target)  # fails when the target exists: no writer replaces a version's archive
            except FileExistsError:
                raise StoreError(str(target), "already exists: model versions are immutable") from None
        finally:
            staged.unlink(missing_ok=True)
        return str(target)

    def fetch(self, location: str, dest: Path) -> Path:
        path = Path(location)
        if not path.is_file():
            raise StoreError(location, "file not found")
        return path

    def discard(self, location: str) -> None:
        Path(location).unlink(missing_ok=True)


class S3Store:
    """Archives in an S3 bucket under a prefix (``s3://bucket/prefix``), through s3fs; the bucket is made on
    first use. Credentials come from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` as boto reads them."""

    def __init__(self, url: str, endpoint: str = "") -> None:
        try:
            import s3fs
        except ImportError as exc:
            raise StoreError(url, "s3:// stores need the s3 extra (pip install 'fsml[s3]')") from exc
        self.url = url.rstrip("/")
        self.bucket = self.url[len(S3_PREFIX) :].split("/", 1)[0]
        if not self.bucket:
            raise StoreError(url, "no bucket in the URL (expected s3://bucket/prefix)")
        self.fs: Any = s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": endpoint} if endpoint else {}, skip_instance_cache=True
        )

    def put(self, local: Path, key: str) -> str:
        location = f"{self.url}/{key}"
        path = location[len(S3_PREFIX) :]
        try:
            if not self.fs.exists(self.bucket):
                with contextlib.suppress(FileExistsError):  # another first writer made it meanwhile
                    self.fs.mkdir(self.bucket)
            if self.fs.exists(path):
                raise StoreError(location, "already exists: model versions are immutable")
            # A conditional write (If-None-Match: *, on AWS S3, MinIO and moto): of two writers that both found
            # no object, one fails here instead of replacing the other's archive.
            self.fs.put_file(str(local), path, mode="create")
        except StoreError:
            raise
        except FileExistsError:
            raise StoreError(location, "already exists: model versions are immutable (written meanwhile)") from None
        except Exception as exc:  # botocore's errors: unreachable endpoint, refused credentials, full disk
            raise StoreError(location, f"upload failed: {exc}") from exc
        return location

    def fetch(self, location: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staged = dest.with_name(f".{dest.name}.part-{uuid.uuid4().hex}")
        try:
            self.fs.get_file(location[len(S3_PREFIX) :], str(staged))
        except FileNotFoundError:
            staged.unlink(missing_ok=True)
            raise StoreError(location, "object not found") from None
        except Exception as exc:
            staged.unlink(missing_ok=True)
            raise StoreError(location, f"download failed: {exc}") from exc
        staged.replace(dest)  # atomic: another process never reads half a download
        return dest

    def discard(self, location: str) -> None:
        try:
            self.fs.rm_file(location[len(S3_PREFIX) :])
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise StoreError(location, f"delete failed: {exc}") from exc


def model_store(url: str | Path, endpoint: str = "") -> ModelStore:
    """The store behind a setting: ``s3://bucket/prefix`` or a folder."""
    text = str(url)
    return S3Store(text, endpoint) if text.startswith(S3_PREFIX) else FolderStore(text)


def store_for_location(location: str, endpoint: str = "") -> ModelStore:
    """The store that can fetch ``location`` (a file path or an ``s3://`` URL), whatever the store setting is now."""
    if location.startswith(S3_PREFIX):
        bucket = location[len(S3_PREFIX) :].split("/", 1)[0]
        return S3Store(f"{S3_PREFIX}{bucket}", endpoint)
    return FolderStore(Path(location).parent)
