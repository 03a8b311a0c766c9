"""Labelled images in and out as a user runs it: ``fsml dataset import`` of 10,000 images in ImageFolder layout with
their official train/test split, ``fsml dataset snapshot`` keeping that split, ``fsml dataset export`` naming every
file; and a large archive through the API, imported by a real Celery worker. Real MariaDB, DVC and processes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from annotation.services import create_project, set_role
from datastore.models import Item, Task
from tests.annotation_helpers import client_for
from tests.helpers import fsml
from tests.image_helpers import noise_png

CLASSES = [f"class{c}" for c in range(10)]
SPLIT_SIZES = {"train": 8_000, "test": 2_000}
GIT = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t.invalid",
}


def image_folder(root: Path) -> dict[str, str]:
    """10,000 distinct 28x28 PNGs under <split>/<class>/; returns file name -> split."""
    written, seed = {}, 0
    for split, n in SPLIT_SIZES.items():
        for i in range(n):
            name = f"{split}-{i:05d}.png"
            path = root / split / CLASSES[i % len(CLASSES)] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(noise_png(seed))
            written[name] = split
            seed += 1
    return written


def test_ten_thousand_labelled_images_in_with_their_split_and_out_with_their_names(
    live_env: dict[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    for key, value in GIT.items():
        monkeypatch.setenv(key, value)
    manager = get_user_model().objects.create(username="mona")
    project = create_project("digits10k", "image_classification", CLASSES, [])
    set_role(project, manager, "manager")
    files = image_folder(tmp_path / "official")

    started = time.monotonic()
    proc = fsml("dataset", "import", "digits10k", str(tmp_path / "official"), "--format", "imagefolder", "--as", "mona")
    seconds = time.monotonic() - started
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported 10000 image(s) into digits10k: 10000 new task(s) (10000 labelled)" in said
    print(f"\nfsml dataset import of 10,000 28x28 PNGs: {seconds:.1f} s end to end")  # shown with -s; not asserted
    assert Task.objects.filter(project=project, status="done").count() == 10_000
    assert Task.objects.filter(project=project, split="test").count() == SPLIT_SIZES["test"]

    snap = fsml("dataset", "snapshot", "digits10k", "--name", "digits10k-v1", "--info", str(tmp_path / "info.json"))
    assert snap.returncode == 0, snap.stdout + snap.stderr
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["counts"] == {"train": 8_000, "val": 0, "test": 2_000}  # the official split, kept
    manifest = json.loads(
        (Path(live_env["FSML_HOME"]) / "data" / "datasets" / "digits10k-v1" / "manifest.json").read_text()
    )
    assert manifest["counts"] == info["counts"] and manifest["split"]["fixed"] == 10_000
    assert sum(manifest["label_distribution"]["test"].values()) == 2_000

    out = tmp_path / "export"
    exported = fsml("dataset", "export", "digits10k", "--format", "csv", "--out", str(out), "--with-files")
    assert exported.returncode == 0, exported.stdout + exported.stderr
    rows = list(csv.DictReader((out / "tasks.csv").open()))
    assert {r["file_name"] for r in rows} == set(files)  # every file name present
    assert all(r["split"] == files[r["file_name"]] for r in rows)
    assert all(r["label"] == f"class{int(r['file_name'][-9:-4]) % 10}" for r in rows)
    sample = rows[::997]
    assert all(hashlib.sha256((out / r["image"]).read_bytes()).hexdigest() == r["content_hash"] for r in sample)
    assert len(list((out / "images").iterdir())) == 10_000

    again = fsml("dataset", "import", "digits10k", str(tmp_path / "official"), "--format", "imagefolder", "--as", "x")
    assert again.returncode == 2 and "no user named 'x'" in again.stdout and "Traceback" not in again.stderr


def test_a_large_archive_through_the_api_is_imported_by_the_worker(celery_worker, live_env: dict[str, str]) -> None:
    manager = get_user_model().objects.create(username="mona")
    project = create_project("big", "image_classification", CLASSES[:2], [])
    set_role(project, manager, "manager")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for i in range(2_100):  # over the 2,000 that an import request runs by itself
            out.writestr(f"{CLASSES[i % 2]}/{i}.png", noise_png(50_000 + i))
    client = client_for("mona")
    started = client.post(
        f"/api/projects/{project.pk}/import/?format=imagefolder",
        {"file": io.BytesIO(archive.getvalue())},
        format="multipart",
    )
    assert started.status_code == 202, started.json()
    url = started.json()["url"]
    deadline = time.monotonic() + 120
    while (job := client.get(url).json())["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    assert (job["done"], job["total"], job["result"]["tasks_created"]) == (2_100, 2_100, 2_100)
    assert Item.objects.filter(tasks__project=project).count() == 2_100
