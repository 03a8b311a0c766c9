"""Model archives: a round trip keeps every byte; any tampering is refused."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from modelpack.archive import ArchiveError, pack, sha256_file, unpack


def _model_dir(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.onnx").write_bytes(bytes(range(256)) * 40)
    (src / "vocab.json").write_text('{"tokens": ["<pad>", "<unk>"]}')
    return src


def test_round_trip_is_byte_identical_and_reproducible(tmp_path: Path) -> None:
    src = _model_dir(tmp_path)
    sha, manifest = pack(src, tmp_path / "a.tar.gz", {"name": "m", "version": 1})
    sha2, _ = pack(src, tmp_path / "b.tar.gz", {"name": "m", "version": 1})
    assert sha == sha2 == sha256_file(tmp_path / "a.tar.gz")
    assert set(manifest["files"]) == {"model.onnx", "vocab.json"}
    loaded = unpack(tmp_path / "a.tar.gz", tmp_path / "out", expected_sha256=sha)
    assert loaded["name"] == "m"
    for name in ("model.onnx", "vocab.json"):
        assert (tmp_path / "out" / name).read_bytes() == (src / name).read_bytes()


def test_a_flipped_byte_is_refused(tmp_path: Path) -> None:
    src = _model_dir(tmp_path)
    archive = tmp_path / "a.tar.gz"
    sha, _ = pack(src, archive, {"name": "m"})
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="checksum does not match"):
        unpack(archive, tmp_path / "out", expected_sha256=sha)
    # Without the registry's checksum the archive's own checks still catch it: this byte (the packing is
    # reproducible, so always the same one) lands in a tar header, which then no longer lists every file.
    with pytest.raises(ArchiveError, match="files do not match the manifest"):
        unpack(archive, tmp_path / "out2")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_a_swapped_member_is_refused(tmp_path: Path) -> None:
    src = _model_dir(tmp_path)
    archive = tmp_path / "a.tar.gz"
    pack(src, archive, {"name": "m"})
    rebuilt = tmp_path / "evil.tar.gz"
    with tarfile.open(archive) as old, tarfile.open(rebuilt, "w:gz") as new:
        for member in old.getmembers():
            payload = old.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "model.onnx":
                payload = b"not the model"
                member.size = len(payload)
            new.addfile(member, io.BytesIO(payload))
    with pytest.raises(ArchiveError, match="checksum mismatch for model.onnx"):
        unpack(rebuilt, tmp_path / "out")


def _member(
    name: str, payload: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(payload) if kind == tarfile.REGTYPE else 0
    return info, payload


def _crafted(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], files: dict[str, bytes] | None = None) -> Path:
    """A tar.gz with these members and, unless ``files`` is None, a manifest listing ``files`` with their
    correct SHA-256s (so only the check under test can refuse it)."""
    if files is not None:
        listed = {name: hashlib.sha256(payload).hexdigest() for name, payload in files.items()}
        members = [_member("manifest.json", json.dumps({"name": "m", "files": listed}).encode()), *members]
    with tarfile.open(path, "w:gz") as tar:
        for info, payload in members:
            tar.addfile(info, io.BytesIO(payload) if info.isfile() else None)
    return path


def _refused_cleanly(archive: Path, area: Path, reason: str) -> None:
    """Unpacking is refused for ``reason``, and nothing is left in or next to the destination."""
    with pytest.raises(ArchiveError, match=reason):
        unpack(archive, area / "out")
    assert list(area.iterdir()) == [], "no destination, no staging folder, nothing written beside them"


MODEL = b"weights" * 10


@pytest.mark.parametrize(
    "name",
    ["../escaped", "sub/../../escaped", ".hidden"],
)
def test_a_member_named_outside_the_destination_or_hidden_is_refused(tmp_path: Path, name: str) -> None:
    area = tmp_path / "area"
    area.mkdir()
    payload = b"evil payload"
    archive = _crafted(
        tmp_path / "evil.tar.gz",
        [_member("model.onnx", MODEL), _member(name, payload)],
        {"model.onnx": MODEL, name: payload},
    )
    _refused_cleanly(archive, area, f"unsafe member '{re.escape(name)}'")
    assert not (tmp_path / "escaped").exists() and not (area / "escaped").exists()


def test_an_absolute_member_name_is_refused(tmp_path: Path) -> None:
    area, target = tmp_path / "area", tmp_path / "absolute-target"
    area.mkdir()
    payload = b"evil payload"
    archive = _crafted(tmp_path / "evil.tar.gz", [_member(str(target), payload)], {str(target): payload})
    _refused_cleanly(archive, area, f"unsafe member '{re.escape(str(target))}'")
    assert not target.exists()


def test_a_symlink_member_is_refused(tmp_path: Path) -> None:
    area, secret = tmp_path / "area", tmp_path / "secret.txt"
    area.mkdir()
    secret.write_bytes(b"secret")
    link = _member("model.onnx", kind=tarfile.SYMTYPE, link=str(secret))
    # Listed with the digest of what it points at: only the member-type check can tell.
    archive = _crafted(tmp_path / "evil.tar.gz", [link], {"model.onnx": b"secret"})
    _refused_cleanly(archive, area, "unsafe member 'model.onnx'")
    assert secret.read_bytes() == b"secret"


def test_an_archive_without_a_manifest_is_refused(tmp_path: Path) -> None:
    area = tmp_path / "area"
    area.mkdir()
    archive = _crafted(tmp_path / "bare.tar.gz", [_member("model.onnx", MODEL)], files=None)
    _refused_cleanly(archive, area, "no manifest.json")


@pytest.mark.parametrize("extra", ["extra.bin", "../extra.bin"])
def test_a_file_the_manifest_does_not_list_is_refused(tmp_path: Path, extra: str) -> None:
    area = tmp_path / "area"
    area.mkdir()
    archive = _crafted(
        tmp_path / "extra.tar.gz", [_member("model.onnx", MODEL), _member(extra, b"unlisted")], {"model.onnx": MODEL}
    )
    _refused_cleanly(archive, area, "files do not match the manifest")
    assert not (tmp_path / "extra.bin").exists()


def test_missing_and_empty_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="file not found"):
        unpack(tmp_path / "nope.tar.gz", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="no model files"):
        pack(tmp_path / "empty", tmp_path / "x.tar.gz", {})
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(ArchiveError, match="unreadable"):
        unpack(tmp_path / "junk.tar.gz", tmp_path / "out")


def test_the_archive_carries_its_text_processing_code(model_archive, tmp_path: Path, monkeypatch) -> None:
    """The tokeniser and span decoding travel inside the archive, checksummed with the weights: a later change
    to the installed tokeniser does not change what an archived model is fed."""
    import shutil

    import modelpack.text
    from modelpack.inputs import InputError
    from modelpack.runtime import TextClassifierRuntime, load_runtime

    archive, sha, manifest = model_archive
    assert manifest["preprocessing"]["code"] == "text_processing.py" and "text_processing.py" in manifest["files"]
    dest = tmp_path / "unpacked"
    unpack(archive, dest, expected_sha256=sha)
    assert (dest / "text_processing.py").read_bytes() == Path(modelpack.text.__file__).read_bytes()
    texts = ["A great flight, thanks!", "lost my bag #again"]
    runtime = load_runtime(dest)
    assert isinstance(runtime, TextClassifierRuntime)
    assert runtime.text is not modelpack.text and runtime.text.__name__.startswith("fsml_archive_text_")
    before = [p.as_dict() for p in runtime.predict(texts)]

    # A later release tokenises differently (here: by character): the archived model keeps its own tokeniser.
    monkeypatch.setattr(modelpack.text, "_TOKEN", re.compile(r"\S"))
    assert modelpack.text.tokenize("ok") == ["o", "k"]
    assert [p.as_dict() for p in load_runtime(dest).predict(texts)] == before
    # A text archive that names no processing code is refused, never run with whatever tokeniser is installed.
    bare = tmp_path / "bare"
    shutil.copytree(dest, bare)
    info = json.loads((bare / "manifest.json").read_text())
    del info["preprocessing"]["code"]
    (bare / "manifest.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="names no processing code"):
        load_runtime(bare)
    # Code changed in the unpacked cache after its checks is refused before it runs; code that does not load
    # (here in an export folder, which lists no checksums) is a clear error, not a half-loaded model.
    (dest / "text_processing.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(InputError, match="does not match its manifest checksum"):
        load_runtime(dest)
    info = json.loads((dest / "manifest.json").read_text())
    del info["files"]
    (dest / "manifest.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="processing code 'text_processing.py' does not load: boom"):
        load_runtime(dest)


def test_unpacking_an_archive_already_in_place_keeps_the_copy_being_read(tmp_path: Path) -> None:
    # Two processes unpacking one archive: the one that finishes second must not replace the first's copy
    # under a reader. Without the expected SHA-256 the early check is skipped, as in the race.
    src = _model_dir(tmp_path)
    sha, _ = pack(src, tmp_path / "a.tar.gz", {"name": "m", "version": 1})
    dest = tmp_path / "out"
    unpack(tmp_path / "a.tar.gz", dest, expected_sha256=sha)
    before = {p.name: p.stat().st_ino for p in [dest, *dest.iterdir()]}
    with (dest / "model.onnx").open("rb") as reading:
        loaded = unpack(tmp_path / "a.tar.gz", dest)
        assert loaded["name"] == "m"
        assert {p.name: p.stat().st_ino for p in [dest, *dest.iterdir()]} == before
        assert reading.read() == (src / "model.onnx").read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out-")] == []  # staging removed
