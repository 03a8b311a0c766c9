"""Labelled images in through the import API (one zip archive: ImageFolder, CSV or Label Studio JSON with the files),
conflicts and bad archives refused with nothing written, large imports as background jobs, and exports that name
each image and can carry the files. Real MariaDB; the background runner is run as the worker runs it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation import background, image_imports
from annotation.services import AnnotationError, create_project, import_records, set_role
from datastore.models import Item, Project, ProjectJob, Task
from tests.image_helpers import noise_png

pytestmark = pytest.mark.django_db

LABELS = ["cat", "dog"]


@pytest.fixture(autouse=True)
def home(settings, tmp_path: Path) -> Path:
    settings.FSML_HOME = tmp_path
    return tmp_path


def manager() -> Any:
    return get_user_model().objects.get_or_create(username="mona")[0]


def image_project(name: str = "pets", task_type: str = "image_classification") -> Project:
    project = create_project(name, task_type, LABELS, [])
    set_role(project, manager(), "manager")
    return project


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def post(project: Project, fmt: str, payload: bytes, user: Any = None, name: str = "data.zip") -> Any:
    client = APIClient()
    client.force_authenticate(user or manager())
    return client.post(
        f"/api/projects/{project.pk}/import/?format={fmt}",
        {"file": SimpleUploadedFile(name, payload)},
        format="multipart",
    )


def tasks_of(project: Project) -> dict[str, Task]:
    return {t.item.title: t for t in Task.objects.filter(project=project).select_related("item")}


def nothing_written(project: Project) -> bool:
    return not Task.objects.filter(project=project).exists() and not Item.objects.filter(kind="image").exists()


def test_an_imagefolder_archive_with_split_folders_becomes_gold_labelled_tasks() -> None:
    project = image_project()
    files = {
        "train/cat/c1.png": noise_png(1),
        "train/dog/d1.png": noise_png(2),
        "test/cat/c2.png": noise_png(3),
        "README.txt": b"files at the top belong to no class",
        "__MACOSX/train/cat/._c1.png": b"resource fork",
    }
    res = post(project, "imagefolder", zipped(files))
    assert res.status_code == 201, res.json()
    assert res.json() == {
        "files": 3,
        "tasks_created": 3,
        "duplicates": 0,
        "already_in_project": 0,
        "labelled": 3,
        "splits": {"test": 1, "train": 2},
    }
    tasks = tasks_of(project)
    assert {n: (t.final_value, t.split, t.status) for n, t in tasks.items()} == {
        "c1.png": ("cat", "train", "done"),
        "d1.png": ("dog", "train", "done"),
        "c2.png": ("cat", "test", "done"),
    }
    item = tasks["c1.png"].item
    assert item.metadata["file_name"] == "c1.png" and item.content_hash == hashlib.sha256(noise_png(1)).hexdigest()
    assert Path(item.image).read_bytes() == noise_png(1)
    again = post(project, "imagefolder", zipped(files)).json()  # the same images: counted, not added
    assert (again["tasks_created"], again["already_in_project"]) == (0, 3)


def test_gold_labels_of_an_image_import_are_found_by_the_label_filter() -> None:
    from annotation.datamanager.services import TaskFilter, list_tasks

    project = image_project()
    files = {"cat/c1.png": noise_png(1), "dog/d1.png": noise_png(2), "cat/c2.png": noise_png(3)}
    assert post(project, "imagefolder", zipped(files)).status_code == 201
    tasks = tasks_of(project)
    cats = list_tasks(project, TaskFilter(label="cat")).rows
    assert sorted(r["id"] for r in cats) == sorted([tasks["c1.png"].pk, tasks["c2.png"].pk])
    assert [r["id"] for r in list_tasks(project, TaskFilter(label="dog")).rows] == [tasks["d1.png"].pk]


def test_a_csv_archive_finds_files_by_path_or_name_and_keeps_splits() -> None:
    project = image_project()
    rows = "image,label,split\nimgs/a.png,cat,train\nb.png,dog,VAL\nc.png,,\n"
    files = {"labels.csv": rows.encode(), "imgs/a.png": noise_png(1), "imgs/b.png": noise_png(2), "c.png": noise_png(3)}
    res = post(project, "csv", zipped(files))
    assert res.status_code == 201, res.json()
    tasks = tasks_of(project)
    assert {n: (t.final_value, t.split, t.status) for n, t in tasks.items()} == {
        "a.png": ("cat", "train", "done"),
        "b.png": ("dog", "val", "done"),
        "c.png": (None, "", "open"),  # no label: a task to label, split by the hash in snapshots
    }


def test_a_label_studio_export_with_its_upload_folder_imports_choices_and_predictions() -> None:
    project = image_project()
    tasks = [
        {
            "data": {"image": "/data/upload/1/0a1b2c3d-first.png"},  # Label Studio's name for an upload
            "annotations": [{"result": [{"type": "choices", "value": {"choices": ["dog"]}}]}],
        },
        {
            "data": {"image": "second.png", "split": "test"},
            "annotations": [{"was_cancelled": True, "result": [{"type": "choices", "value": {"choices": ["dog"]}}]}],
            "predictions": [{"result": [{"type": "choices", "value": {"choices": ["cat"]}}]}],
        },
    ]
    files = {"export.json": json.dumps(tasks).encode(), "media/first.png": noise_png(1), "second.png": noise_png(2)}
    assert post(project, "labelstudio", zipped(files)).status_code == 201
    found = tasks_of(project)
    assert (found["first.png"].final_value, found["first.png"].status) == ("dog", "done")
    assert (found["second.png"].final_value, found["second.png"].prediction, found["second.png"].split) == (
        None,
        "cat",
        "test",
    )


def test_one_image_with_two_labels_is_refused_with_the_conflicts_and_nothing_is_written() -> None:
    project = image_project()
    files = {
        "cat/a.png": noise_png(1),
        "dog/a-copy.png": noise_png(1),  # the same content under another name and label
        "cat/b.png": noise_png(2),
        "cat/b-copy.png": noise_png(2),  # an identical duplicate: fine
    }
    res = post(project, "imagefolder", zipped(files))
    assert res.status_code == 400
    detail = res.json()["detail"]
    assert detail.startswith("1 item(s) with conflicting labels, nothing imported")
    assert '"cat" (cat/a.png)' in detail and '"dog" (dog/a-copy.png)' in detail and "b.png" not in detail
    assert nothing_written(project)
    del files["dog/a-copy.png"]
    ok = post(project, "imagefolder", zipped(files)).json()
    assert (ok["files"], ok["tasks_created"], ok["duplicates"]) == (3, 2, 1)


def test_one_text_with_two_labels_is_refused_and_identical_duplicates_are_fine() -> None:
    project = create_project("texts", "text_classification", ["neg", "pos"], [])
    set_role(project, manager(), "manager")
    records: list[dict[str, Any]] = [
        {"text": "great flight", "value": "pos"},
        {"text": "lost my bag", "value": "neg"},
        {"text": "great flight", "value": "neg"},
        {"text": "lost my bag", "value": "neg"},
    ]
    with pytest.raises(AnnotationError) as refused:
        import_records(project, manager(), [dict(r) for r in records])
    assert refused.value.reason.startswith("1 item(s) with conflicting labels, nothing imported")
    assert "record 1 ('great flight')" in refused.value.reason and "record 3" in refused.value.reason
    assert not Task.objects.filter(project=project).exists() and not Item.objects.exists()
    # The label given once and the same text unlabelled elsewhere: the label is kept, whichever came first.
    kept = [{"text": "lost my bag", "value": None}, *records[1:2], records[3]]
    assert import_records(project, manager(), kept) == 1
    assert Task.objects.get(project=project).final_value == "neg"


def test_labels_outside_the_schema_are_refused_with_the_list() -> None:
    project = image_project()
    files = {
        "cat/a.png": noise_png(1),
        "bird/b.png": noise_png(2),
        "bird/c.png": noise_png(3),
        "fish/d.png": noise_png(4),
    }
    res = post(project, "imagefolder", zipped(files))
    assert res.status_code == 400
    assert res.json()["detail"] == (
        "2 label(s) not in the project's labels ['cat', 'dog']: 'bird' (2), 'fish' (1); nothing imported"
    )
    assert nothing_written(project)


def test_the_wrong_kind_of_data_is_refused_with_counts() -> None:
    images = image_project()
    text = post(images, "csv", b"text,label\nhello,cat\nworld,dog\n", name="texts.csv")
    assert text.status_code == 400
    assert "not text records: 2 text record(s) refused; nothing imported" in text.json()["detail"]
    texts = image_project("texts", "text_classification")
    res = post(texts, "imagefolder", zipped({"cat/a.png": noise_png(1), "dog/b.png": noise_png(2)}))
    assert res.status_code == 400
    assert res.json()["detail"] == (
        "text_classification projects take text records, not image files: 2 image file(s) refused; nothing imported"
    )
    assert nothing_written(images) and nothing_written(texts) and not Item.objects.exists()


@pytest.mark.parametrize(
    ("fmt", "payload", "reason"),
    [
        ("imagefolder", {"../cat/evil.png": b""}, "'../cat/evil.png': a path outside the archive"),
        ("imagefolder", {"/etc/cat/evil.png": b""}, "'/etc/cat/evil.png': a path outside the archive"),
        ("imagefolder", b"this is no zip archive", "format=imagefolder takes one zip archive"),
        ("csv", {"l.csv": b"file,label\na.png,cat\nmissing.png,dog\n", "a.png": b""}, "no image file 'missing.png'"),
        (
            "csv",
            {"l.csv": b"file,label,split\na.png,cat,holdout\n", "a.png": b""},
            "csv: 1 problem(s): 2: split 'holdout' is not one of train, val, test",
        ),
        ("csv", {"a.png": b""}, "the archive needs one .csv file with the labels; it has no .csv file"),
        ("imagefolder", {"cat/a.png": noise_png(1), "cat/b.png": b"not a png"}, "cat/b.png: not a readable image"),
        ("imagefolder", {"cat/a.png": noise_png(1), "cat/notes.txt": b"x"}, "cat/notes.txt: not an image file"),
        ("imagefolder", {"cat/a.png": noise_png(1), "test/dog/b.png": noise_png(2)}, "test/dog/b.png: expected"),
    ],
)
def test_a_bad_archive_is_refused_clearly_and_nothing_is_written(fmt: str, payload: Any, reason: str) -> None:
    project = image_project()
    res = post(project, fmt, zipped(payload) if isinstance(payload, dict) else payload)
    assert res.status_code == 400, res.json()
    assert reason in res.json()["detail"]
    assert nothing_written(project)


def test_a_decompression_bomb_is_refused_before_it_is_read() -> None:
    project = image_project()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cat/bomb.png", b"\0" * (50 * 1024**2))  # 50 MiB of zeros, some 50 KiB compressed
    res = post(project, "imagefolder", out.getvalue())
    assert res.status_code == 400 and "'cat/bomb.png': inflates" in res.json()["detail"]
    assert nothing_written(project)


def store_files(home: Path) -> set[str]:
    return {p.name for p in (home / "files" / "uploads").rglob("*") if p.is_file()}


def test_a_refused_import_removes_the_files_it_stored_and_keeps_those_items_use(home: Path) -> None:
    project = image_project()
    assert post(project, "imagefolder", zipped({"cat/kept.png": noise_png(5)})).status_code == 201
    kept = store_files(home)
    assert len(kept) == 1
    conflicting = {
        "cat/kept-again.png": noise_png(5),  # already stored and recorded by the first import
        "cat/new.png": noise_png(6),
        "cat/a.png": noise_png(7),
        "dog/a.png": noise_png(7),  # two labels for one image: refused after every file was stored
    }
    res = post(project, "imagefolder", zipped(conflicting))
    assert res.status_code == 400 and "conflicting labels" in res.json()["detail"]
    assert store_files(home) == kept
    unreadable = {"dog/b.png": noise_png(8), "dog/c.png": b"not a png"}
    res = post(project, "imagefolder", zipped(unreadable))
    assert res.status_code == 400 and "dog/c.png: not a readable image" in res.json()["detail"]
    assert store_files(home) == kept
    assert Task.objects.filter(project=project).count() == 1
    ok = post(project, "imagefolder", zipped({"cat/new.png": noise_png(6)})).json()
    assert ok["tasks_created"] == 1 and Path(Item.objects.get(title="new.png").image).is_file()


def test_files_of_a_refused_import_that_an_item_records_meanwhile_are_kept(home: Path) -> None:
    from annotation.services.imports import _remove_unrecorded
    from datastore.services.items import image_items, store_image_file

    store = home / "files" / "uploads"
    taken, lone = (store_image_file(f"{n}.png", noise_png(n), store) for n in (1, 2))
    assert taken.written and lone.written and not store_image_file("again.png", noise_png(1), store).written
    image_items("import:elsewhere", [taken])  # another import recorded the same file before the refusal's clean-up
    _remove_unrecorded([taken.path, lone.path])
    assert Path(taken.path).is_file() and not Path(lone.path).exists()


def test_a_large_import_runs_as_a_background_job_all_or_nothing(monkeypatch, home: Path) -> None:
    monkeypatch.setattr(image_imports, "LARGE_IMPORT", 20)  # the same path as 2,000 files, with fewer
    project = image_project()
    files = {f"{LABELS[i % 2]}/{i}.png": noise_png(i) for i in range(30)}
    res = post(project, "imagefolder", zipped(files))
    assert res.status_code == 202, res.json()
    body = res.json()
    assert body["kind"] == "import" and body["status"] == "queued" and body["url"] == f"/api/project-jobs/{body['id']}/"
    assert not Task.objects.filter(project=project).exists()  # nothing until the job runs
    job = background.run(body["id"])  # as the worker runs it
    assert job is not None
    assert job.status == ProjectJob.Status.SUCCEEDED, job.error
    assert (job.done, job.total, job.result["tasks_created"]) == (30, 30, 30)
    assert not list((home / "files" / "imports").iterdir())  # the upload goes once its job ends

    broken = {f"{LABELS[i % 2]}/x{i}.png": noise_png(100 + i) for i in range(30)}
    broken["dog/zz-last.png"] = b"\x89PNG truncated"
    failing = post(project, "imagefolder", zipped(broken)).json()
    failed = background.run(failing["id"])
    assert failed is not None and failed.status == ProjectJob.Status.FAILED
    assert failed.error.startswith("1 file(s) are not readable images, nothing imported: dog/zz-last.png")
    assert Task.objects.filter(project=project).count() == 30  # the first import's, none of the failed one's
    assert not Item.objects.filter(title__startswith="x").exists()


def test_a_large_text_import_runs_as_a_background_job(monkeypatch) -> None:
    monkeypatch.setattr(image_imports, "LARGE_IMPORT", 5)
    project = image_project("texts", "text_classification")
    rows = "text,label\n" + "".join(f"text {i},{LABELS[i % 2]}\n" for i in range(8))
    res = post(project, "csv", rows.encode(), name="t.csv")
    assert res.status_code == 202
    job = background.run(res.json()["id"])
    assert job is not None and job.status == ProjectJob.Status.SUCCEEDED and job.result["tasks_created"] == 8


def imported_pets() -> Project:
    project = image_project()
    files = {"train/cat/c1.png": noise_png(1), "train/dog/d1.png": noise_png(2), "test/cat/c2.png": noise_png(3)}
    assert post(project, "imagefolder", zipped(files)).status_code == 201
    return project


def export(project: Project, query: str) -> Any:
    client = APIClient()
    client.force_authenticate(manager())
    return client.get(f"/api/projects/{project.pk}/export/?{query}")


def test_exports_of_an_image_project_name_each_image() -> None:
    project = imported_pets()
    digest = {f"c{i}.png": hashlib.sha256(noise_png(n)).hexdigest() for i, n in ((1, 1), (2, 3))}
    ls = json.loads(export(project, "format=labelstudio").content)
    by_name = {t["data"]["file_name"]: t for t in ls}
    assert set(by_name) == {"c1.png", "d1.png", "c2.png"}
    first = by_name["c1.png"]
    assert first["data"] == {
        "image": f"images/{digest['c1.png']}.png",
        "file_name": "c1.png",
        "content_hash": digest["c1.png"],
    }
    assert first["annotations"][0]["result"][0]["to_name"] == "image"
    assert first["annotations"][0]["result"][0]["value"] == {"choices": ["cat"]}

    rows = list(csv.DictReader(io.StringIO(export(project, "format=csv").content.decode())))
    assert {r["file_name"]: (r["content_hash"], r["label"], r["split"]) for r in rows}["c2.png"] == (
        digest["c2.png"],
        "cat",
        "test",
    )
    lines = [json.loads(x) for x in export(project, "format=doccano").content.decode().splitlines()]
    assert {x["file_name"] for x in lines} == {"c1.png", "d1.png", "c2.png"} and all(x["content_hash"] for x in lines)


def test_an_export_with_files_is_a_zip_that_imports_back() -> None:
    project = imported_pets()
    res = export(project, "format=csv&include_files=1")
    assert res.status_code == 200 and res["Content-Type"] == "application/zip"
    data = b"".join(res.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        assert names[-1] == "tasks.csv" and len(names) == 4
        for name in names[:-1]:
            assert name == f"images/{hashlib.sha256(archive.read(name)).hexdigest()}.png"
    # The archive is an import: the same images, the same labels and splits, into a new project.
    again = image_project("pets-again")
    assert post(again, "csv", data).status_code == 201
    moved = {
        t.item.content_hash: (t.final_value, t.split) for t in Task.objects.filter(project=again).select_related("item")
    }
    original = {
        t.item.content_hash: (t.final_value, t.split)
        for t in Task.objects.filter(project=project).select_related("item")
    }
    assert moved == original


def test_export_rows_take_a_selection_of_tasks() -> None:
    from annotation.services import export_rows

    project = imported_pets()
    chosen = Task.objects.filter(project=project, split="test")
    rows = export_rows(project, chosen)
    assert [r["file_name"] for r in rows] == ["c2.png"]
    other = image_project("other")
    assert export_rows(other, chosen) == []  # another project's tasks are never exported under this one
    assert len(export_rows(project)) == 3


def test_the_manager_page_imports_a_labelled_archive() -> None:
    from django.test import Client

    project = image_project()
    client = Client()
    client.force_login(manager())
    archive = SimpleUploadedFile("pets.zip", zipped({"cat/a.png": noise_png(1), "dog/b.png": noise_png(2)}))
    res = client.post(f"/manage/{project.pk}/import/", {"format": "imagefolder", "file": archive}, follow=True)
    assert res.status_code == 200
    said = [str(m) for m in res.context["messages"]]
    assert said == ["Imported 2 image(s): 2 new task(s), 0 duplicate(s), 0 already in the project."]
    bad = SimpleUploadedFile("pets.zip", zipped({"bird/a.png": noise_png(3)}))
    refused = client.post(f"/manage/{project.pk}/import/", {"format": "imagefolder", "file": bad})
    assert "1 label(s) not in the project&#x27;s labels" in refused.content.decode()
    assert Task.objects.filter(project=project).count() == 2
