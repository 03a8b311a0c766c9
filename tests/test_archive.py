"""Model archives: a round trip keeps every byte; any tampering is refused."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from datastore.archive import ArchiveError, pack, sha256_file, unpack


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
    with pytest.raises(ArchiveError):  # without the registry's checksum the per-file sums still catch it
        unpack(archive, tmp_path / "out2")


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
            import io

            new.addfile(member, io.BytesIO(payload))
    with pytest.raises(ArchiveError, match="checksum mismatch for model.onnx"):
        unpack(rebuilt, tmp_path / "out")


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
    import re
    import shutil

    import datastore.text
    from datastore.runtime import InputError, TextClassifierRuntime, load_runtime

    archive, sha, manifest = model_archive
    assert manifest["preprocessing"]["code"] == "text_processing.py" and "text_processing.py" in manifest["files"]
    dest = tmp_path / "unpacked"
    unpack(archive, dest, expected_sha256=sha)
    assert (dest / "text_processing.py").read_bytes() == Path(datastore.text.__file__).read_bytes()
    texts = ["A great flight, thanks!", "lost my bag #again"]
    runtime = load_runtime(dest)
    assert isinstance(runtime, TextClassifierRuntime)
    assert runtime.text is not datastore.text and runtime.text.__name__.startswith("fsml_archive_text_")
    before = [p.as_dict() for p in runtime.predict(texts)]

    # A later release tokenises differently (here: by character): the archived model keeps its own tokeniser.
    monkeypatch.setattr(datastore.text, "_TOKEN", re.compile(r"\S"))
    assert datastore.text.tokenize("ok") == ["o", "k"]
    assert [p.as_dict() for p in load_runtime(dest).predict(texts)] == before
    # An archive from before code travelled (no "code" in its manifest) runs the installed module.
    old = tmp_path / "old"
    shutil.copytree(dest, old)
    info = json.loads((old / "manifest.json").read_text())
    del info["preprocessing"]["code"]
    (old / "manifest.json").write_text(json.dumps(info))
    old_runtime = load_runtime(old)
    assert isinstance(old_runtime, TextClassifierRuntime) and old_runtime.text is datastore.text
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
