"""Imports into a project: the source they are stored under, what each task type accepts, and suggestions
from an image model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotation.preannotation import preannotate
from annotation.services import (
    AnnotationError,
    create_project,
    import_file,
    import_images,
    set_role,
    update_settings,
)
from datastore.models import Item, Project, Task

pytestmark = pytest.mark.django_db

CSV = b"text,label\ngreat flight,pos\nlost my bag,\nlost my bag,\n"  # two texts, one of them twice


def manager() -> Any:
    return get_user_model().objects.get_or_create(username="mona")[0]


def project_of(name: str, task_type: str = "text_classification", labels: list[str] | None = None) -> Project:
    project = create_project(name, task_type, labels or ["neg", "pos"], [])
    set_role(project, manager(), "manager")
    return project


def test_a_project_name_as_long_as_allowed_imports() -> None:
    project = project_of("p" * 100)  # as long as a project name may be, and as long as a source name
    assert import_file(project, manager(), "csv", CSV) == (3, 2)
    assert {t.item.text for t in Task.objects.filter(project=project).select_related("item")} == {
        "great flight",
        "lost my bag",
    }


def test_a_renamed_project_does_not_import_the_same_texts_twice() -> None:
    project = project_of("before")
    assert import_file(project, manager(), "csv", CSV) == (3, 2)
    project = update_settings(project, manager(), name="after")
    assert import_file(project, manager(), "csv", CSV) == (3, 0)
    assert Task.objects.filter(project=project).count() == 2
    assert Item.objects.filter(tasks__project=project).values("source").distinct().count() == 1


def test_a_text_already_in_the_project_under_another_source_is_not_added_again() -> None:
    from datastore import services

    # As imports were stored before they were keyed by project id: under a source named for the project.
    project = project_of("legacy")
    old = services.import_texts("import:legacy", ["great flight"])
    Task.objects.create(project=project, item=old[0])
    assert import_file(project, manager(), "csv", CSV) == (3, 1)
    assert sorted(Task.objects.filter(project=project).values_list("item__text", flat=True)) == [
        "great flight",
        "lost my bag",
    ]


@pytest.mark.parametrize("fmt", ["csv", "doccano", "labelstudio"])
def test_text_records_are_refused_by_an_image_project(fmt: str) -> None:
    project = project_of("photos", "image_classification", ["red", "blue"])
    payloads = {
        "csv": b"text,label\nhello,red\n",
        "doccano": b'{"text": "hello", "label": ["red"]}\n',
        "labelstudio": b'[{"data": {"text": "hello"}}]',
    }
    client = APIClient()
    client.force_authenticate(manager())
    res = client.post(
        f"/api/projects/{project.pk}/import/?format={fmt}",
        {"file": SimpleUploadedFile("f", payloads[fmt])},
        format="multipart",
    )
    assert res.status_code == 400
    assert res.json()["detail"] == (
        "image_classification projects take image files (format=images, or a zip archive of labelled images), "
        "not text records: 1 text record(s) refused; nothing imported"
    )
    assert not Task.objects.filter(project=project).exists() and not Item.objects.exists()


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A small real image model (MNIST digits), trained for one epoch, exported and packaged."""
    from tests.image_helpers import mnist_version
    from training.config import ModelConfig, TrainConfig
    from training.export import export
    from training.package import build_archive
    from training.train import train

    out = tmp_path_factory.mktemp("digits")
    data = mnist_version(200)
    config = TrainConfig(
        task="image_classification", model=ModelConfig(name="cnn"), dataset="mnist", epochs=1, batch_size=32
    )
    export(train(config, data), out / "export", data, int8=False)
    sha, manifest = build_archive(out / "export", out / "model.tar.gz", "digits", 1, "mnist", {})
    return out / "model.tar.gz", sha, manifest


def test_an_image_model_suggests_labels_from_the_images(digit_model, settings, tmp_path: Path) -> None:
    from datastore import services
    from deploy.demo.corpora import MNIST_LABELS, mnist_digits

    settings.FSML_HOME = tmp_path
    archive, sha, manifest = digit_model
    model = services.register_model_version(
        "digits", "image_classification", str(archive), sha, manifest, None, version=1
    )
    project = project_of("digits", "image_classification", list(MNIST_LABELS))
    digits = mnist_digits(limit=5, seed=2)
    assert import_images(project, manager(), [(d.name, d.png) for d in digits]) == 5
    assert preannotate(project, model) == 5
    tasks = list(Task.objects.filter(project=project))
    predictions = [t.prediction or {} for t in tasks]
    assert all(p.get("label") in MNIST_LABELS and p.get("model") == "digits:1" for p in predictions)
    assert all(t.uncertainty is not None and 0 <= t.uncertainty <= 1 for t in tasks)

    # A task whose stored image has gone is named, and no suggestion is written.
    Task.objects.update(prediction=None, uncertainty=None)
    Path(tasks[0].item.image).unlink()
    with pytest.raises(AnnotationError, match=f"task {tasks[0].pk}: its image cannot be read"):
        preannotate(project, model)
    assert not Task.objects.filter(project=project, prediction__isnull=False).exists()
