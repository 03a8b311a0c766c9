"""Import and export through the API on the real database: Label Studio JSON, doccano JSONL, CoNLL, CSV and image
files; the OpenAPI schema. The parsers alone are tested in tests/unit/test_annotation_formats.py."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation import formats
from annotation.services import create_project, set_role
from datastore.models import Task
from tests.annotation_helpers import LS
from tests.helpers import streamed_body
from tests.image_helpers import png


@pytest.fixture
def setup(db):
    users = get_user_model().objects
    manager, annotator = users.create(username="mona"), users.create(username="alice")
    project = create_project("imports", "text_classification", ["neg", "pos"], [], members=[annotator])
    set_role(project, manager, "manager")
    return project, manager, annotator


def upload(user, project, fmt: str, payload: bytes):
    client = APIClient()
    client.force_authenticate(user)
    return client.post(
        f"/api/projects/{project.pk}/import/?format={fmt}",
        {"file": SimpleUploadedFile("f", payload)},
        format="multipart",
    )


def test_import_creates_tasks_with_gold_labels_and_suggestions(setup) -> None:
    project, manager, annotator = setup
    assert upload(annotator, project, "labelstudio", LS).status_code == 403
    res = upload(manager, project, "labelstudio", LS)
    assert res.status_code == 201 and res.json() == {"records": 3, "tasks_created": 3}
    tasks = {t.item.text: t for t in Task.objects.filter(project=project).select_related("item")}
    assert tasks["great flight"].final_value == "pos" and tasks["lost my bag"].prediction == "neg"
    assert upload(manager, project, "labelstudio", LS).json()["tasks_created"] == 0  # same texts: no new tasks


def test_a_bad_record_refuses_the_whole_import(setup) -> None:
    project, manager, _ = setup
    bad = b"text,label\nfine,neg\nwrong,maybe\n,pos\n"
    res = upload(manager, project, "csv", bad)
    assert res.status_code == 400
    assert "record 2 value" in res.json()["detail"] and "record 3: empty text" in res.json()["detail"]
    assert Task.objects.filter(project=project).count() == 0
    malformed = upload(manager, project, "doccano", b"{oops\n")
    assert malformed.status_code == 400 and malformed.json()["errors"][0][0] == 1
    assert Task.objects.filter(project=project).count() == 0


def test_oversized_import_is_refused(setup) -> None:
    project, manager, _ = setup
    res = upload(manager, project, "csv", b"text\n" + b"x" * (20 * 1024 * 1024 + 1))
    assert res.status_code == 413
    assert res.json() == {"detail": f"the file is larger than {20 * 1024 * 1024} bytes"}
    assert Task.objects.filter(project=project).count() == 0


def test_export_then_import_keeps_the_labels(setup) -> None:
    project, manager, _ = setup
    upload(manager, project, "labelstudio", LS)
    client = APIClient()
    client.force_authenticate(manager)
    exported = client.get(f"/api/projects/{project.pk}/export/?format=doccano")
    assert exported.status_code == 200 and exported["Content-Disposition"].endswith('imports.jsonl"')
    other = create_project("copy", "text_classification", ["neg", "pos"], [])
    set_role(other, manager, "manager")
    assert upload(manager, other, "doccano", exported.content).json()["tasks_created"] == 3
    labels = dict(Task.objects.filter(project=other).values_list("item__text", "final_value"))
    assert labels == {"great flight": "pos", "lost my bag": None, "no label yet": None}
    for fmt in ("labelstudio", "csv"):
        assert client.get(f"/api/projects/{project.pk}/export/?format={fmt}").status_code == 200
    assert client.get(f"/api/projects/{project.pk}/export/?format=conll").status_code == 400  # spans only


def test_openapi_schema_describes_the_api(db) -> None:
    from django.core.management import call_command

    client = APIClient()
    assert client.get("/api/schema/").status_code in (401, 403)  # the API's map is for signed-in users
    client.force_authenticate(get_user_model().objects.create(username="reader"))
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/api/projects/{project_id}/next/",
        "/api/tasks/{task_id}/annotations/",
        "/api/jobs/",
        "/api/projects/{project_id}/import/",
        "/api/crawls/",
    ):
        assert path in schema["paths"]
    call_command("spectacular", "--fail-on-warn", "--file", "/dev/null")  # no view without a schema


def test_gold_labels_are_done_not_queued_and_round_trip_through_label_studio(setup) -> None:
    project, manager, annotator = setup
    upload(manager, project, "labelstudio", LS)
    gold = Task.objects.get(project=project, item__text="great flight")
    assert gold.status == "done"
    alice = APIClient()
    alice.force_authenticate(annotator)
    handed = set()
    while (res := alice.post(f"/api/projects/{project.pk}/next/")).status_code == 200:
        handed.add(res.json()["id"])
        alice.post(f"/api/tasks/{res.json()['id']}/annotations/", {"value": "neg"}, format="json")
    assert gold.pk not in handed and len(handed) == 2
    client = APIClient()
    client.force_authenticate(manager)
    exported = client.get(f"/api/projects/{project.pk}/export/?format=labelstudio").content
    assert formats.parse("labelstudio", exported, "text_classification")[0]["value"] == "pos"  # ground truth first


def test_imported_gold_labels_reach_dataset_snapshots(setup, tmp_path) -> None:
    from datastore.dvcrepo import DataRepo
    from datastore.loader import load
    from datastore.snapshot import snapshot_project

    project, manager, _ = setup
    upload(manager, project, "labelstudio", LS)
    repo = DataRepo(tmp_path / "data", str(tmp_path / "remote"))
    version = snapshot_project(project, "gold-v1", repo)
    assert sum(version.counts.values()) == 1  # only the gold-labelled task is labelled yet
    records = [r for rows in load("gold-v1", repo=str(repo.root)).splits.values() for r in rows]
    assert [(r["text"], r["label"]) for r in records] == [("great flight", "pos")]


def test_image_files_become_tasks_all_or_nothing(db, settings, tmp_path) -> None:
    settings.FSML_HOME = tmp_path
    users = get_user_model().objects
    manager, annotator = users.create(username="mona"), users.create(username="alice")
    project = create_project("photos", "image_classification", ["red", "blue"], [], members=[annotator])
    set_role(project, manager, "manager")
    client = APIClient()
    client.force_authenticate(manager)
    url = f"/api/projects/{project.pk}/import/?format=images"

    def send(*files: tuple[str, bytes]):
        return client.post(url, {"file": [SimpleUploadedFile(n, b) for n, b in files]}, format="multipart")

    red, blue = png((220, 20, 20)), png((20, 20, 220))
    truncated = red[: len(red) // 2]
    refused = send(("red.png", red), ("broken.png", truncated))
    assert refused.status_code == 400
    assert "broken.png" in refused.json()["detail"] and "nothing imported" in refused.json()["detail"]
    assert not Task.objects.filter(project=project).exists()
    assert not (tmp_path / "files" / "uploads").exists()  # no file written either
    text = send(("notes.txt", b"just words"))
    assert text.status_code == 400 and "not a readable image" in text.json()["detail"]

    made = send(("red.png", red), ("blue.png", blue), ("red-again.png", red))
    assert made.status_code == 201, made.json()
    assert made.json() == {"records": 3, "tasks_created": 2}  # the same bytes are one item
    assert send(("red.png", red)).json()["tasks_created"] == 0
    tasks = Task.objects.filter(project=project).select_related("item").order_by("id")
    assert [t.item.title for t in tasks] == ["red.png", "blue.png"]
    # An annotator is handed the image and can fetch it.
    worker = APIClient()
    worker.force_authenticate(annotator)
    task = worker.post(f"/api/projects/{project.pk}/next/").json()
    image = worker.get(task["item"]["image"])
    assert image.status_code == 200 and streamed_body(image) == red

    text_project = create_project("texts", "text_classification", ["a", "b"], [])
    set_role(text_project, manager, "manager")
    wrong = client.post(
        f"/api/projects/{text_project.pk}/import/?format=images",
        {"file": [SimpleUploadedFile("red.png", red)]},
        format="multipart",
    )
    assert wrong.status_code == 400 and "image_classification" in wrong.json()["detail"]
