"""Dataset versions: real DVC in a temporary repository, the real database, the loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from annotation.services import create_project, next_task, submit
from datastore.dvcrepo import DataRepo
from datastore.loader import DatasetNotFound, load
from datastore.models import DatasetVersion, Item
from datastore.snapshot import SnapshotError, snapshot_project
from tests.helpers import stored_items

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
    task = next_task(labelled_project, user)
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
    with pytest.raises(DatasetNotFound, match="'nope' not found"):
        load("nope", repo=str(repo.root))


def test_an_adjudicated_label_wins_over_the_majority(labelled_project, repo) -> None:
    from annotation.review import adjudicate
    from annotation.services import set_role
    from datastore.models import Task

    reviewer = get_user_model().objects.create(username="rita")
    set_role(labelled_project, reviewer, "reviewer")
    task = Task.objects.filter(project=labelled_project, status="done").order_by("id").first()
    original = task.annotations.get().value
    decided = next(label for label in LABELS if label != original)
    adjudicate(task.pk, reviewer, decided)
    snapshot_project(labelled_project, "v-adjudicated", repo)
    loaded = load("v-adjudicated", repo=str(repo.root))
    labels = {r["id"]: r["label"] for rows in loaded.splits.values() for r in rows}
    assert labels[task.item.content_hash] == decided
