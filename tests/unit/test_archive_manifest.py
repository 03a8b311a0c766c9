"""An archive's manifest itself may be hostile: a link, a directory, or JSON that is not an object. Each is
refused with an ``ArchiveError`` that says why, never a KeyError or AttributeError from inside tarfile."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from modelpack.archive import ArchiveError, unpack

MODEL = b"weights" * 10


def _archive(path: Path, members: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            payload = payloads.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _refused(archive: Path, area: Path, reason: str) -> None:
    area.mkdir()
    with pytest.raises(ArchiveError, match=reason) as caught:
        unpack(archive, area / "out")
    assert caught.value.path == str(archive)
    assert list(area.iterdir()) == [], "nothing written in or beside the destination"


@pytest.mark.parametrize("target", ["/etc/passwd", "elsewhere.json", "../manifest.json"])
def test_a_manifest_that_is_a_symlink_is_refused(tmp_path: Path, target: str) -> None:
    model = tarfile.TarInfo("model.onnx")
    archive = _archive(
        tmp_path / "evil.tar.gz", [_link("manifest.json", target, tarfile.SYMTYPE), model], {"model.onnx": MODEL}
    )
    _refused(archive, tmp_path / "area", "manifest.json is not a regular file")


def test_a_manifest_that_is_a_hard_link_to_a_listed_file_is_refused(tmp_path: Path) -> None:
    manifest = json.dumps({"files": {}}).encode()
    model = tarfile.TarInfo("model.onnx")
    archive = _archive(
        tmp_path / "evil.tar.gz",
        [model, _link("manifest.json", "model.onnx", tarfile.LNKTYPE)],
        {"model.onnx": manifest},
    )
    _refused(archive, tmp_path / "area", "manifest.json is not a regular file")


def test_a_manifest_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("manifest.json")
    folder.type = tarfile.DIRTYPE
    archive = _archive(tmp_path / "evil.tar.gz", [folder], {})
    _refused(archive, tmp_path / "area", "manifest.json is not a regular file")


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (b"[1, 2]", "manifest.json is not a JSON object"),
        (b'{"files": ["model.onnx"]}', "manifest.json: files is not an object of name to SHA-256"),
        (b'{"files": {"model.onnx": 7}}', "manifest.json: files is not an object of name to SHA-256"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_refused(tmp_path: Path, manifest: bytes, reason: str) -> None:
    archive = _archive(
        tmp_path / "odd.tar.gz",
        [tarfile.TarInfo("manifest.json"), tarfile.TarInfo("model.onnx")],
        {"manifest.json": manifest, "model.onnx": MODEL},
    )
    _refused(archive, tmp_path / "area", reason)
