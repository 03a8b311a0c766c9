"""Versioned guidelines on the real database: versions from every kind of edit, the version each annotation was
made under, the lazy version 1 of older projects, agreement per version, and who may see and edit them."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.agreement import agreement
from annotation.services import agreement_by_version, current_guideline_version, edit_guidelines, update_settings
from datastore.models import Annotation, GuidelineVersion, Project
from tests.annotation_helpers import client_for, make_project, user

pytestmark = pytest.mark.django_db


def label(name: str, project: Project, value: str) -> Annotation:
    """``name`` takes their next task and answers ``value`` through the API."""
    client = client_for(name)
    task = client.post(f"/api/projects/{project.pk}/next/").json()["id"]
    res = client.post(f"/api/tasks/{task}/annotations/", {"value": value}, format="json")
    assert res.status_code == 201, res.content
    return Annotation.objects.get(pk=res.json()["id"])


def page_client(name: str) -> Client:
    client = Client()
    client.force_login(user(name))
    return client


def test_every_edit_makes_a_version_and_annotations_record_the_current_one() -> None:
    project = make_project(overlap=1, n=4, guidelines="Label the tone.")
    first = current_guideline_version(project)
    assert (first.number, first.text) == (1, "Label the tone.")
    assert label("alice", project, "pos").guideline_version == first

    # The manager's settings form.
    form = {"name": project.name, "labels": "neg\npos", "overlap": 1, "lock_seconds": 600}
    form |= {"queue_order": "sequential", "guidelines": "Label the tone. Sarcasm is neg."}
    saved = page_client("mona").post(f"/manage/{project.pk}/", form)
    assert saved.status_code == 302, saved.content
    assert label("alice", project, "neg").guideline_version == GuidelineVersion.objects.get(project=project, number=2)

    # The API, with a note.
    res = client_for("mona").post(
        f"/api/projects/{project.pk}/guidelines/", {"guidelines": "v3 text", "note": "shorter"}, format="json"
    )
    assert res.status_code == 201 and res.json() == {"version": 3, "created": True}
    third = GuidelineVersion.objects.get(project=project, number=3)
    assert (third.text, third.note, third.created_by) == ("v3 text", "shorter", user("mona"))
    project.refresh_from_db()
    assert project.guidelines == "v3 text"
    assert label("bob", project, "pos").guideline_version == third

    # Saving the same text again, or other settings only, makes no version.
    assert edit_guidelines(project, user("mona"), "v3 text", "no change") is None
    update_settings(project, user("mona"), lock_seconds=300)
    assert GuidelineVersion.objects.filter(project=project).count() == 3


def test_a_project_from_before_versions_gets_version_1_from_its_text_lazily() -> None:
    project = make_project(overlap=1, n=3, guidelines="old text")
    GuidelineVersion.objects.filter(project=project).delete()  # as a project made before migration 0010
    version = label("alice", project, "pos").guideline_version
    assert version is not None and (version.number, version.text) == (1, "old text")

    other = make_project(task_type="multi_label", overlap=1, n=0, guidelines="before")
    GuidelineVersion.objects.filter(project=other).delete()
    version = edit_guidelines(other, user("mona"), "after", "clearer")
    assert version is not None and version.number == 2
    texts = list(GuidelineVersion.objects.filter(project=other).order_by("number").values_list("text", "note"))
    assert texts == [("before", ""), ("after", "clearer")]


def test_agreement_is_computed_per_guideline_version() -> None:
    project = make_project(overlap=2, n=6, guidelines="v1")
    # Under v1, alice and bob disagree on two of three tasks; under v2 they agree on all three.
    for value_a, value_b in [("pos", "neg"), ("neg", "pos"), ("pos", "pos")]:
        label("alice", project, value_a), label("bob", project, value_b)
    edit_guidelines(project, user("mona"), "v2: sarcasm is neg", "sarcasm")
    for value in ["pos", "neg", "pos"]:
        label("alice", project, value), label("bob", project, value)

    rows = agreement_by_version(project)
    assert [(r["number"], r["annotations"], r["tasks"]) for r in rows] == [(1, 6, 3), (2, 6, 3)]
    v1 = [
        {"task": a.task_id, "annotator": a.annotator.username, "value": a.value, "text": a.task.item.text}
        for a in Annotation.objects.filter(guideline_version__number=1, task__project=project)
    ]
    assert rows[0]["krippendorff_alpha"] == agreement(project.task_type, project.labels, v1)["krippendorff_alpha"]
    assert rows[0]["krippendorff_alpha"] < 0.5
    assert rows[1]["krippendorff_alpha"] == 1.0 and rows[1]["note"] == "sarcasm"

    page = page_client("rita").get(f"/review/{project.pk}/guidelines/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="version-row-1"' in html and 'data-testid="version-row-2"' in html
    assert "sarcasm" in html and "v2: sarcasm is neg" in html


def test_guideline_pages_are_for_reviewers_and_managers_and_edits_for_managers() -> None:
    project = make_project(overlap=1, n=1)
    url = f"/review/{project.pk}/guidelines/"
    assert page_client("alice").get(url).status_code == 403
    assert page_client("stranger").get(url).status_code == 404
    assert page_client("rita").post(url, {"guidelines": "x"}).status_code == 403
    assert client_for("rita").post(f"/api/projects/{project.pk}/guidelines/", {"guidelines": "x"}).status_code == 403
    assert client_for("alice").get(f"/api/projects/{project.pk}/guidelines/").status_code == 403
    res = page_client("mona").post(url, {"guidelines": "new", "note": "x" * 501})
    assert res.status_code == 400  # the note is one line
    res = page_client("mona").post(url, {"guidelines": "new", "note": "first rules"})
    assert res.status_code == 302
    assert GuidelineVersion.objects.filter(project=project).latest("number").note == "first rules"
