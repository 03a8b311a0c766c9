"""Dataset versions: real DVC in a temporary repository, the real database, the loader."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model

from annotation.services import create_project, next_task, submit
from datastore.dvcrepo import DataRepo, DataRepoError
from datastore.loader import DatasetCorrupted, DatasetError, DatasetNotFound, list_versions, load
from datastore.models import DatasetVersion, Item, Task
from datastore.snapshot import SnapshotError, snapshot_project
from datastore.versions import describe, diff
from tests.helpers import claim_task, fsml, stored_items

pytestmark = pytest.mark.django_db

LABELS = ["negative", "neutral", "positive"]


@pytest.fixture
def repo(tmp_path: Path) -> DataRepo:
    return DataRepo(tmp_path / "data", str(tmp_path / "remote"))


@pytest.fixture
def labelled_project():
    stored_items(60, "sample text number {i}")
    user = get_user_model().objects.create(username="annotator")
    project = create_project("p", "text_classification", LABELS, Item.objects.order_by("id"), members=[user])
    for i in range(50):  # 10 tasks stay unlabelled and must not appear in the snapshot
        task = next_task(project, user)
        assert task is not None
        submit(task.task_id, user, LABELS[i % 3])
    return project


def test_snapshot_is_deterministic_and_loadable_without_the_database(labelled_project, repo, tmp_path) -> None:
    first = snapshot_project(labelled_project, "v1", repo)
    second = snapshot_project(labelled_project, "v1-again", repo)
    assert first.dvc_md5 == second.dvc_md5  # same database state, same bytes
    assert sum(first.counts.values()) == 50
    assert (tmp_path / "remote").is_dir()

    # The loader reads through DVC from the remote: drop the workspace copy and the cache first.
    shutil.rmtree(repo.root / "datasets" / "v1")
    shutil.rmtree(repo.root / ".dvc" / "cache")
    loaded = load("v1", repo=str(repo.root))
    assert loaded.labels == LABELS
    assert sum(len(rows) for rows in loaded.splits.values()) == 50
    assert {r["label"] for r in loaded.splits["train"]} <= set(LABELS)


def test_a_new_label_changes_the_hash_and_keeps_splits(labelled_project, repo) -> None:
    first = snapshot_project(labelled_project, "v1", repo)
    user = get_user_model().objects.get(username="annotator")
    task = claim_task(labelled_project, user)
    submit(task.task_id, user, "positive")
    second = snapshot_project(labelled_project, "v2", repo)
    assert second.dvc_md5 != first.dvc_md5
    a, b = load("v1", repo=str(repo.root)), load("v2", repo=str(repo.root))
    split_a = {r["id"]: s for s, rows in a.splits.items() for r in rows}
    split_b = {r["id"]: s for s, rows in b.splits.items() for r in rows}
    assert all(split_b[k] == v for k, v in split_a.items())  # no item changed split
    assert len(split_b) == len(split_a) + 1


def test_a_taken_name_and_an_empty_project_are_refused_without_a_record(labelled_project, repo) -> None:
    snapshot_project(labelled_project, "v1", repo)
    with pytest.raises(SnapshotError, match="already exists"):
        snapshot_project(labelled_project, "v1", repo)
    empty = create_project("empty", "text_classification", LABELS, [])
    with pytest.raises(SnapshotError, match="no finished labels"):
        snapshot_project(empty, "v-empty", repo)
    assert list(DatasetVersion.objects.values_list("name", flat=True)) == ["v1"]


def test_unknown_version_is_a_clear_error(repo) -> None:
    repo.ensure()
    with pytest.raises(DatasetNotFound, match="'nope'.*not found: no revision 'dataset/nope'"):
        load("nope", repo=str(repo.root))


def test_an_adjudicated_label_wins_over_the_majority(labelled_project, repo) -> None:
    from annotation.services import adjudicate, set_role
    from datastore.models import Task

    reviewer = get_user_model().objects.create(username="rita")
    set_role(labelled_project, reviewer, "reviewer")
    task = Task.objects.filter(project=labelled_project, status="done").order_by("id").first()
    assert task is not None
    original = task.annotations.get().value
    decided = next(label for label in LABELS if label != original)
    adjudicate(task.pk, reviewer, decided)
    snapshot_project(labelled_project, "v-adjudicated", repo)
    loaded = load("v-adjudicated", repo=str(repo.root))
    labels = {r["id"]: r["label"] for rows in loaded.splits.values() for r in rows}
    assert labels[task.item.url_hash] == decided


def relabel_one(project) -> Task:
    """A reviewer overrides the label of the first finished task; returns that task."""
    from annotation.services import adjudicate, set_role

    reviewer = get_user_model().objects.get_or_create(username="rita")[0]
    set_role(project, reviewer, "reviewer")
    task = Task.objects.filter(project=project, status="done").order_by("id").first()
    assert task is not None
    original = task.annotations.get().value
    adjudicate(task.pk, reviewer, next(label for label in LABELS if label != original))
    task.refresh_from_db()
    return task


def test_a_relabelled_item_gives_a_new_hash_and_the_diff_names_it(labelled_project, repo) -> None:
    first = snapshot_project(labelled_project, "v1", repo)
    task = relabel_one(labelled_project)
    second = snapshot_project(labelled_project, "v2", repo)
    assert second.dvc_md5 != first.dvc_md5
    changes = diff(load("v1", repo=str(repo.root)), load("v2", repo=str(repo.root)))
    assert [c["id"] for c in changes.relabelled] == [task.item.url_hash]
    assert changes.relabelled[0]["to"] == task.final_value
    assert changes.added == changes.removed == changes.edited == []
    assert diff(load("v1", repo=str(repo.root)), load("v1", repo=str(repo.root))).unchanged


def test_show_warns_about_imbalance_and_leakage(repo) -> None:
    user = get_user_model().objects.create(username="ann")
    stored_items(40, "some words {i}")
    project = create_project("skewed", "text_classification", LABELS, Item.objects.order_by("id"), members=[user])
    for i in range(40):
        submit(claim_task(project, user).task_id, user, "negative" if i else "positive")
    version = load(snapshot_project(project, "skewed-v1", repo).name, repo=str(repo.root))
    info = describe(version)
    assert any("imbalance" in w and "neutral" in w for w in info["warnings"])
    assert info["label_totals"] == {"negative": 39, "neutral": 0, "positive": 1}
    assert info["leakage"] == []
    # Leakage: the same content in two splits is found and named.
    train, test = version.splits["train"][0], dict(version.splits["train"][1])
    test.update(content_hash=train["content_hash"], id="another-item")
    version.splits["test"].append(test)
    leaks = describe(version)["leakage"]
    assert leaks == [
        {"content": train["content_hash"], "splits": ["test", "train"], "ids": sorted([train["id"], "another-item"])}
    ]


def test_split_stays_with_the_item_when_its_text_changes(labelled_project, repo) -> None:
    snapshot_project(labelled_project, "v1", repo)
    item = Item.objects.order_by("id").first()
    assert item is not None
    item.text, item.content_hash = "a re-crawled page with new text", "f" * 64
    item.save()
    snapshot_project(labelled_project, "v2", repo)
    a, b = load("v1", repo=str(repo.root)), load("v2", repo=str(repo.root))
    where = lambda v: {r["id"]: s for s, rows in v.splits.items() for r in rows}  # noqa: E731
    assert where(a) == where(b)
    assert diff(a, b).edited == [item.url_hash]


def test_pull_show_and_diff_on_a_clean_clone_with_the_database_gone(labelled_project, repo, tmp_path) -> None:
    from scmrepo.git import Git

    snapshot_project(labelled_project, "v1", repo)
    task = relabel_one(labelled_project)
    snapshot_project(labelled_project, "v2", repo)
    clone = tmp_path / "clone"
    Git.clone(str(repo.root), str(clone))
    # Nothing listens on port 9: a command that touched the database would fail.
    env = {**os.environ, "DATABASE_URL": "mysql://nobody@127.0.0.1:9/gone", "FSML_HOME": str(tmp_path / "home")}
    assert list_versions(str(clone)) == ["v1", "v2"]
    listed = fsml("dataset", "list", "--repo", str(clone), env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.split() == ["name", "v1", "v2"]  # a table: its header, then a row per version
    pulled = fsml("dataset", "pull", "v2", "--repo", str(clone), "--out", str(tmp_path / "v2"), env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    manifest = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    rows = [json.loads(line) for s in ("train", "val", "test") for line in (tmp_path / "v2" / f"{s}.jsonl").open()]
    assert len(rows) == sum(manifest["counts"].values()) == 50
    shown = fsml("dataset", "show", "v2", "--repo", str(clone), "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["counts"] == manifest["counts"]
    changed = fsml("dataset", "diff", "v1", "v2", "--repo", str(clone), "--json", env=env)
    assert [c["id"] for c in json.loads(changed.stdout)["relabelled"]] == [task.item.url_hash]
    unknown = fsml("dataset", "show", "nope", "--repo", str(clone), env=env)
    assert unknown.returncode == 2 and "'nope'" in unknown.stdout and "not found" in unknown.stdout
    busy = fsml("dataset", "pull", "v1", "--repo", str(clone), "--out", str(tmp_path / "v2"), env=env)
    assert busy.returncode == 2 and "not empty" in busy.stdout


def damage(repo: DataRepo, rel: str) -> None:
    """Overwrite the DVC cache copy of one file of version v1."""
    dir_md5 = yaml.safe_load((repo.root / "datasets" / "v1.dvc").read_text())["outs"][0]["md5"]
    listing = repo.root / ".dvc" / "cache" / "files" / "md5" / dir_md5[:2] / dir_md5[2:]
    entry = next(e for e in json.loads(listing.read_text()) if e["relpath"] == rel)
    path = repo.root / ".dvc" / "cache" / "files" / "md5" / entry["md5"][:2] / entry["md5"][2:]
    path.chmod(0o644)
    path.write_bytes(b"not the data\n")


def test_a_damaged_cache_file_is_fetched_again_or_refused(labelled_project, repo, caplog) -> None:
    snapshot_project(labelled_project, "v1", repo)
    shutil.rmtree(repo.root / "datasets" / "v1")  # reads come from the cache, not the workspace
    damage(repo, "train.jsonl")
    loaded = load("v1", repo=str(repo.root))  # the damaged copy is dropped, a good one fetched from the remote
    assert sum(len(rows) for rows in loaded.splits.values()) == 50
    assert "train.jsonl in the DVC cache" in caplog.text and "damaged" in caplog.text
    damage(repo, "val.jsonl")
    shutil.rmtree(repo.remote)
    with pytest.raises(DatasetCorrupted, match="val.jsonl in the DVC cache was damaged .* the remote cannot supply it"):
        load("v1", repo=str(repo.root), splits=("val",))
    with pytest.raises(DatasetError, match="train.jsonl is neither in the local DVC cache nor on the DVC remote"):
        load("v1", repo=str(repo.root), splits=("train",))


def test_a_missing_remote_records_nothing_and_keeps_the_name_free(labelled_project, tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the remote's parent folder should be")
    broken = DataRepo(tmp_path / "data", str(blocker / "remote"))
    with pytest.raises(DataRepoError, match="dvc push failed"):
        snapshot_project(labelled_project, "v1", broken)
    assert not DatasetVersion.objects.exists()
    blocker.unlink()  # the remote can be reached again: the same name now makes the version
    assert snapshot_project(labelled_project, "v1", broken).name == "v1"
    assert load("v1", repo=str(broken.root)).manifest["counts"] == DatasetVersion.objects.get().counts


def test_image_versions_carry_their_images_and_decode(repo, tmp_path) -> None:
    from tests.browser_support import images

    user = get_user_model().objects.create(username="ann")
    colours = {f"c{i}": (i * 20, 255 - i * 20, 128) for i in range(12)}
    items = images(tmp_path, colours)
    project = create_project("colours", "image_classification", ["warm", "cool"], items, members=[user])
    for i in range(12):
        submit(claim_task(project, user).task_id, user, "warm" if i % 2 else "cool")
    snapshot_project(project, "colours-v1", repo)
    loaded = load("colours-v1", repo=str(repo.root))
    records = [r for rows in loaded.splits.values() for r in rows]
    assert len(records) == 12 and all(r["image"].startswith("images/") for r in records)
    assert len(loaded.images) == 12
    split = next(s for s, rows in loaded.splits.items() if rows)
    pixels, label = loaded.image_dataset(split, size=16, channels=3)[0]
    assert pixels.shape == (3, 16, 16) and 0.0 <= pixels.min() <= pixels.max() <= 1.0
    assert label in (0, 1)


def test_a_pulled_version_streams_through_worker_processes_once_each(labelled_project, repo, tmp_path) -> None:
    from datastore.loader import dataloader, pull
    from datastore.streaming import StreamingTextDataset

    snapshot_project(labelled_project, "v1", repo)
    loaded = load("v1", repo=str(repo.root))
    vocab = loaded.build_vocab(min_freq=1)
    folder = pull("v1", str(repo.root), tmp_path / "v1")
    streamed = StreamingTextDataset(folder / "train.jsonl", vocab, loaded.labels)
    batches = list(dataloader(streamed, batch_size=4, shuffle=False, num_workers=2))
    seen = sorted(tuple(row[row > 0].tolist()) for ids, _ in batches for row in ids)
    expected = sorted(tuple(vocab.encode(r["text"], 64)) for r in loaded.splits["train"])
    assert seen == expected  # every record exactly once across the two workers
    in_memory = list(dataloader(loaded.text_dataset("train", vocab), batch_size=8, shuffle=True, num_workers=2))
    assert sum(len(labels) for _, labels in in_memory) == len(loaded.splits["train"])


def test_an_s3_compatible_remote_round_trips(labelled_project, tmp_path, monkeypatch) -> None:
    """DVC pushes to an S3 API (moto's server standing in for MinIO) and a clean clone reads it back."""
    boto3 = pytest.importorskip("boto3", reason="the s3 extra (dvc-s3) is not installed")
    pytest.importorskip("dvc_s3", reason="the s3 extra (dvc-s3) is not installed")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    from scmrepo.git import Git

    from deploy.processes import free_port

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        repo = DataRepo(tmp_path / "data", "s3://fsml-data/dvc", endpoint)
        version = snapshot_project(labelled_project, "v1", repo)
        # The bucket did not exist: the first snapshot made it.
        stored = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="fsml-data")["Contents"]
        assert len(stored) == 5  # the directory listing and its four files
        clone = tmp_path / "clone"
        Git.clone(str(repo.root), str(clone))
        loaded = load("v1", repo=str(clone))  # nothing cached in the clone: every byte comes from S3
        assert sum(len(rows) for rows in loaded.splits.values()) == sum(version.counts.values()) == 50
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["../.git", "a/b", ".hidden", "", "v1 final", "x" * 101])
def test_a_version_name_that_is_not_a_plain_folder_name_is_refused_before_any_file_is_touched(
    labelled_project, repo, name: str
) -> None:
    snapshot_project(labelled_project, "v1", repo)
    git_files = sorted(p.relative_to(repo.root) for p in (repo.root / ".git").rglob("*"))
    with pytest.raises(SnapshotError, match="dataset version names must match"):
        snapshot_project(labelled_project, name, repo)
    assert sorted(p.relative_to(repo.root) for p in (repo.root / ".git").rglob("*")) == git_files
    assert list(DatasetVersion.objects.values_list("name", flat=True)) == ["v1"]
    assert load("v1", repo=str(repo.root)).name == "v1"  # the data repository still works
