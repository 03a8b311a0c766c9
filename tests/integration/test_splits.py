"""Splits a researcher controls: a split fixed by an import is kept by snapshots, ratio and seed options, and the
default stays the stable hash split of every earlier version. Real MariaDB, real DVC in a temporary repository."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from annotation.image_formats import FolderBundle
from annotation.services import create_project, import_labelled_images, import_records, set_role
from datastore.dvcrepo import DataRepo
from datastore.errors import SnapshotError
from datastore.loader import load
from datastore.models import DatasetVersion, Project
from datastore.snapshot import snapshot_project
from tests.image_helpers import noise_png

pytestmark = pytest.mark.django_db

LABELS = ["neg", "pos"]


@pytest.fixture
def repo(tmp_path: Path, settings) -> DataRepo:
    settings.FSML_HOME = tmp_path
    return DataRepo(tmp_path / "data", str(tmp_path / "remote"))


def gold_texts(n: int = 200) -> Project:
    user = get_user_model().objects.create(username="mona")
    project = create_project("texts", "text_classification", LABELS, [])
    set_role(project, user, "manager")
    import_records(project, user, [{"text": f"sample text {i}", "value": LABELS[i % 2]} for i in range(n)])
    return project


def old_split(key: str) -> str:
    """The split every version made before split options existed: sha256(id)[:8] % 100, 10 % test, 10 % val."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < 10 else "val" if bucket < 20 else "train"


def manifest_of(repo: DataRepo, name: str) -> dict:
    return json.loads((repo.root / "datasets" / name / "manifest.json").read_text())


def test_the_default_split_is_the_stable_hash_split_of_earlier_versions(repo: DataRepo) -> None:
    project = gold_texts()
    snapshot_project(project, "v1", repo)
    loaded = load("v1", repo=str(repo.root))
    assert all(old_split(r["id"]) == split for split, rows in loaded.splits.items() for r in rows)
    manifest = manifest_of(repo, "v1")
    assert manifest["split"] == {"method": "sha256(id)[:8] % 100", "key": "id", "val_pct": 10, "test_pct": 10}
    # Byte for byte: each split file is what the records sorted by id, split the old way, serialise to.
    for split, rows in loaded.splits.items():
        data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode()
        assert manifest["files"][f"{split}.jsonl"] == hashlib.sha256(data).hexdigest()
        assert (repo.root / "datasets" / "v1" / f"{split}.jsonl").read_bytes() == data
    explicit = snapshot_project(project, "v1-explicit", repo, val_pct=10, test_pct=10, seed="")
    assert explicit.dvc_md5 == DatasetVersion.objects.get(name="v1").dvc_md5


def test_ratio_and_seed_options_change_the_hash_split_and_are_recorded(repo: DataRepo) -> None:
    project = gold_texts(400)
    base = snapshot_project(project, "base", repo)
    wide = snapshot_project(project, "wide", repo, val_pct=20, test_pct=30)
    assert wide.counts["test"] > base.counts["test"] and wide.counts["val"] > base.counts["val"]
    assert sum(wide.counts.values()) == sum(base.counts.values()) == 400
    assert 0.2 < wide.counts["test"] / 400 < 0.4
    assert manifest_of(repo, "wide")["split"] == {
        "method": "sha256(id)[:8] % 100",
        "key": "id",
        "val_pct": 20,
        "test_pct": 30,
    }
    salted = snapshot_project(project, "salted", repo, seed="run-2")
    assert manifest_of(repo, "salted")["split"]["method"] == "sha256(seed + id)[:8] % 100"
    assert manifest_of(repo, "salted")["split"]["seed"] == "run-2"
    split = {
        v: {r["id"]: s for s, rows in load(v, repo=str(repo.root)).splits.items() for r in rows}
        for v in ("base", "salted")
    }
    moved = sum(split["base"][k] != split["salted"][k] for k in split["base"])
    assert moved > 20  # another seed, another split
    again = snapshot_project(project, "salted-again", repo, seed="run-2")
    assert again.dvc_md5 == salted.dvc_md5  # the same seed, the same bytes


@pytest.mark.parametrize(
    ("val_pct", "test_pct", "reason"),
    [
        (-1, 10, "val_pct must be a whole number from 0 to 99, not -1"),
        (10, -5, "test_pct must be a whole number from 0 to 99, not -5"),
        (50, 50, "val_pct + test_pct must be under 100 (train needs records), not 100"),
        (40, 70, "val_pct + test_pct must be under 100 (train needs records), not 110"),
        (2.5, 10, "val_pct must be a whole number from 0 to 99, not 2.5"),
    ],
)
def test_split_ratios_out_of_range_are_refused_before_anything_is_written(
    repo: DataRepo, val_pct, test_pct, reason: str
) -> None:
    project = gold_texts(20)
    with pytest.raises(SnapshotError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        snapshot_project(project, "bad", repo, val_pct=val_pct, test_pct=test_pct)
    assert not DatasetVersion.objects.exists() and not (repo.root / "datasets" / "bad").exists()


def test_a_split_fixed_by_an_import_is_kept_and_the_rest_are_hash_split(repo: DataRepo, tmp_path: Path) -> None:
    user = get_user_model().objects.create(username="mona")
    project = create_project("shapes", "image_classification", ["a", "b"], [])
    set_role(project, user, "manager")
    folder = tmp_path / "shapes"
    for i in range(60):
        split = "train" if i < 40 else "test"
        path = folder / split / "ab"[i % 2] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(noise_png(i))
    import_labelled_images(project, user, FolderBundle(folder), "imagefolder")
    loose = tmp_path / "loose"  # no split folders: the hash decides
    for i in range(60, 100):
        path = loose / "ab"[i % 2] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(noise_png(i))
    import_labelled_images(project, user, FolderBundle(loose), "imagefolder")

    version = snapshot_project(project, "shapes-v1", repo, val_pct=0, test_pct=25)
    manifest = manifest_of(repo, "shapes-v1")
    assert manifest["split"]["fixed"] == 60 and manifest["split"]["test_pct"] == 25
    loaded = load("shapes-v1", repo=str(repo.root))
    names = {s: {r["image"] for r in rows} for s, rows in loaded.splits.items()}
    digest = {hashlib.sha256(noise_png(i)).hexdigest(): i for i in range(100)}
    index = {s: {digest[Path(rel).stem] for rel in rels} for s, rels in names.items()}
    assert set(range(40)) <= index["train"] and set(range(40, 60)) <= index["test"]
    assert not index["val"]  # val_pct 0, and no image was fixed to val
    assert sum(version.counts.values()) == 100
    assert 0 < len(index["test"] - set(range(40, 60))) < 40  # some of the loose ones went to test by the hash
