"""The model archive: exported model files plus a manifest with a SHA-256 of every file.

Training writes archives; evaluation and serving read them. Nothing here imports either side.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class ArchiveError(Exception):
    """An archive that is missing, malformed or tampered with."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"model archive {path}: {reason}")
        self.path = str(path)
        self.reason = reason


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What an archive holds and how to run it."""

    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def pack(model_dir: Path, out_path: Path, manifest: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Write ``out_path`` (tar.gz) from the files in ``model_dir`` and a manifest.

    Returns the archive's SHA-256 and the full manifest written into it.

    The manifest gets ``files`` (name -> SHA-256) and ``format_version`` added. Members are written in
    sorted order with fixed metadata so the same inputs give the same archive bytes.
    """
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.name != MANIFEST)
    if not files:
        raise ArchiveError(model_dir, "no model files to package")
    full = {**manifest, "format_version": FORMAT_VERSION, "files": {p.name: sha256_file(p) for p in files}}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".part")
    # gzip with no file name and mtime 0 in its header, so the archive bytes depend on content only.
    with (
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        payload = json.dumps(full, indent=2, sort_keys=True).encode("utf-8")
        _add_bytes(tar, MANIFEST, payload)
        for path in files:
            _add_bytes(tar, path.name, path.read_bytes())
    tmp.replace(out_path)  # atomic: readers never see half an archive
    return sha256_file(out_path), full


def _add_bytes(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(payload))


def is_unpacked(dest: Path, sha256: str) -> bool:
    """Whether ``dest`` already holds the verified files of the archive with this SHA-256."""
    marker = dest / ".archive-sha256"
    return marker.is_file() and marker.read_text().strip() == sha256


def unpack(archive: Path, dest: Path, expected_sha256: str | None = None) -> Manifest:
    """Extract an archive into ``dest`` after verifying the archive and every file's checksum.

    Files are written to a temporary folder that is renamed into place, so a process loading ``dest``
    never sees half an archive; when ``dest`` already holds this archive's files (before or after
    extracting) it is reused, never replaced under a process that may be reading it.
    """
    if expected_sha256 and is_unpacked(dest, expected_sha256):
        return Manifest(json.loads((dest / MANIFEST).read_text(encoding="utf-8")))
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        manifest = _extract(archive, staging, expected_sha256)
        # _extract checked the archive against expected_sha256 already: hash it again only without one.
        sha256 = expected_sha256 or sha256_file(archive)
        if is_unpacked(dest, sha256):
            # Another process unpacked the same archive meanwhile and may be loading it: keep its copy.
            return manifest
        (staging / ".archive-sha256").write_text(sha256)
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(staging, dest)
        except OSError:  # another process put the same archive in place first
            if not (dest / MANIFEST).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _extract(archive: Path, dest: Path, expected_sha256: str | None) -> Manifest:
    if not archive.is_file():
        raise ArchiveError(archive, "file not found")
    if expected_sha256 and sha256_file(archive) != expected_sha256:
        raise ArchiveError(archive, "archive checksum does not match the registry")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST not in members:
                raise ArchiveError(archive, "no manifest.json")
            # A link would be followed inside the archive (tarfile raises KeyError for a target it lacks).
            if not members[MANIFEST].isfile():
                raise ArchiveError(archive, f"{MANIFEST} is not a regular file")
            manifest = json.loads(_read(tar, members[MANIFEST]))
            expected = _listed_files(archive, manifest)
            if set(expected) != set(members) - {MANIFEST}:
                raise ArchiveError(archive, "files do not match the manifest")
            for name, digest in expected.items():
                member = members[name]
                if not member.isfile() or "/" in name or name.startswith("."):
                    raise ArchiveError(archive, f"unsafe member {name!r}")
                payload = _read(tar, member)
                if hashlib.sha256(payload).hexdigest() != digest:
                    raise ArchiveError(archive, f"checksum mismatch for {name}")
                (dest / name).write_bytes(payload)
    except (tarfile.TarError, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArchiveError(archive, f"unreadable ({exc})") from exc
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return Manifest(manifest)


def _listed_files(archive: Path, manifest: Any) -> dict[str, str]:
    """The manifest's ``files`` (name -> SHA-256), refused unless the manifest has that shape."""
    if not isinstance(manifest, dict):
        raise ArchiveError(archive, f"{MANIFEST} is not a JSON object")
    files = manifest.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        raise ArchiveError(archive, f"{MANIFEST}: files is not an object of name to SHA-256")
    return files


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise tarfile.TarError(f"{member.name} is not a regular file")
    return fh.read()
