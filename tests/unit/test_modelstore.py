"""The folder model store (the default): each version's archive is written once, and a missing one is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpack.store import FolderStore, StoreError, model_store


def test_a_folder_store_writes_once_and_says_what_is_missing(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"first")
    store = model_store(tmp_path / "store")
    assert isinstance(store, FolderStore)
    location = store.put(archive, "m/m-1.tar.gz")
    assert Path(location) == (tmp_path / "store" / "m" / "m-1.tar.gz").resolve()
    archive.write_bytes(b"second")
    with pytest.raises(StoreError, match="already exists: model versions are immutable"):
        store.put(archive, "m/m-1.tar.gz")
    assert Path(location).read_bytes() == b"first", "the refused write changed nothing"
    assert sorted(p.name for p in Path(location).parent.iterdir()) == ["m-1.tar.gz"], "no staging file left"
    assert store.fetch(location, tmp_path / "unused") == Path(location)
    with pytest.raises(StoreError, match="file not found"):
        store.fetch(str(tmp_path / "store" / "m" / "m-2.tar.gz"), tmp_path / "unused")
