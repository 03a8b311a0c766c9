"""The annotation pages in real headless Chromium against gunicorn and MariaDB: model suggestions of both
shapes, images and multi-label finals on the review page, and a manager setting up a project for an annotator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from annotation.services import create_project, set_role
from datastore.models import Project, Task
from tests.browser_support import (
    annotate_by_api,
    api_session,
    expect_task,
    images,
    login,
    screenshot_on_failure,
    snapshot,
    texts,
    user,
)

pytestmark = pytest.mark.browser


def choices(*names: str) -> list[dict[str, Any]]:
    """A Label Studio result choosing ``names``."""
    return [{"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": list(names)}}]


def spans(*ranges: tuple[int, int, str]) -> list[dict[str, Any]]:
    """A Label Studio result labelling character spans."""
    return [{"type": "labels", "value": {"start": s, "end": e, "labels": [label]}} for s, e, label in ranges]


def import_labelstudio(base: str, project: Project, tasks: list[dict[str, Any]]) -> None:
    """Import tasks through the REST API as a new manager of ``project``."""
    manager = user(f"manager-{project.pk}")
    set_role(project, manager, "manager")
    with api_session(manager) as http:
        res = http.post(
            f"{base}/api/projects/{project.pk}/import/",
            params={"format": "labelstudio"},
            files={"file": ("tasks.json", json.dumps(tasks).encode())},
            timeout=30,
        )
        assert res.status_code == 201, res.text


def test_suggestions_show_imported_labels_and_model_predictions(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    annotator = user("ann")
    project = create_project("suggest", "text_classification", ["pos", "neg"], [], members=[annotator])
    import_labelstudio(
        server,
        project,
        [
            {"data": {"text": "lost my bag"}, "predictions": [{"result": choices("neg")}]},
            {"data": {"text": "a fine flight"}},
            {"data": {"text": "no suggestion here"}},
        ],
    )
    imported, preannotated, _ = Task.objects.filter(project=project).order_by("id")
    assert imported.prediction == "neg"  # an import stores the label itself
    # What `preannotate` stores: the model's record.
    preannotated.prediction = {"label": "pos", "confidence": 0.87, "scores": {"pos": 0.87}, "model": "m:1"}
    preannotated.save(update_fields=["prediction"])

    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        suggestion = page.get_by_test_id("prediction")
        expect_task(page, "lost my bag")
        expect(suggestion).to_have_text("Model suggestion: neg")
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        expect_task(page, "a fine flight")
        expect(suggestion).to_have_text("Model suggestion: pos (87%)")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        expect_task(page, "no suggestion here")
        expect(suggestion).to_have_count(0)


def test_span_and_multi_label_suggestions_are_spelled_out(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    annotator = user("ann")
    ner = create_project("ner", "spans", ["PER"], [], members=[annotator])
    topics = create_project("topics", "multi_label", ["a", "b", "c"], [], members=[annotator])
    # An emoji first: offsets count characters (code points), as the server does, not UTF-16 units.
    text = "\U0001f9ea Ada met Bob"
    import_labelstudio(
        server, ner, [{"data": {"text": text}, "predictions": [{"result": spans((2, 5, "PER"), (10, 13, "PER"))}]}]
    )
    import_labelstudio(
        server, topics, [{"data": {"text": "about c and a"}, "predictions": [{"result": choices("c", "a")}]}]
    )

    page = login(browser, server, "ann", f"/annotate/{ner.pk}/")
    with screenshot_on_failure(page, request):
        expect(page.get_by_test_id("prediction")).to_have_text('Model suggestion: PER "Ada", PER "Bob"')
        page.goto(f"{server}/annotate/{topics.pk}/")
        expect(page.get_by_test_id("prediction")).to_have_text("Model suggestion: a, c")


def test_review_shows_the_image_of_each_disagreement(browser: Any, server: str, request: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    items = images(tmp_path, {"red": (220, 30, 30), "blue": (30, 60, 220)})
    first, second = user("ann1"), user("ann2")
    project = create_project(
        "colours", "image_classification", ["red", "blue"], items, overlap=2, members=[first, second]
    )
    set_role(project, user("rev"), "reviewer")
    annotate_by_api(server, project.pk, {first: ["red", "blue"], second: ["blue", "blue"]})

    page = login(browser, server, "rev", f"/review/{project.pk}/")
    with screenshot_on_failure(page, request):
        rows = page.get_by_test_id("review-row")
        expect(rows).to_have_count(1)
        image = rows.nth(0).get_by_test_id("review-image")
        expect(image).to_have_attribute("src", f"/api/items/{items[0].pk}/image/")
        page.wait_for_function("() => document.querySelector('[data-testid=review-image]').naturalWidth === 64")
        expect(rows.nth(0).get_by_test_id("review-text")).to_have_count(0)  # no empty text box under it
        snapshot(page, "review-image")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("review-empty")).to_be_visible()
    assert Task.objects.get(item=items[0]).final_value == "red"


def test_review_picks_multi_label_finals_with_pressed_toggles(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    items = texts("about c and a")
    first, second = user("ann1"), user("ann2")
    project = create_project("topics", "multi_label", ["a", "b", "c"], items, overlap=2, members=[first, second])
    set_role(project, user("rev"), "reviewer")
    annotate_by_api(server, project.pk, {first: [["a"]], second: [["b", "c"]]})

    page = login(browser, server, "rev", f"/review/{project.pk}/")
    with screenshot_on_failure(page, request):
        row = page.get_by_test_id("review-row")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("b, c")
        toggles = row.get_by_role("group", name=f"Final labels of task {row.get_attribute('data-task-id')}")
        expect(toggles.get_by_role("button")).to_have_count(3)
        page.keyboard.press("3")
        page.keyboard.press("1")
        pressed = [toggles.get_by_role("button").nth(i).get_attribute("aria-pressed") for i in range(3)]
        assert pressed == ["true", "false", "true"]
        snapshot(page, "review-multi-label")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("status")).to_contain_text("final label a, c")
    assert Task.objects.get(item=items[0]).final_value == ["a", "c"]


def test_a_manager_sets_up_a_project_and_the_annotator_sees_its_task(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    boss = user("boss")
    boss.is_staff = True
    boss.save(update_fields=["is_staff"])
    user("ann")
    page = login(browser, server, "boss", "/")
    with screenshot_on_failure(page, request):
        page.get_by_test_id("new-project").click()
        page.fill("#id_name", "tickets")
        page.select_option("#id_task_type", "text_classification")
        page.fill("#id_labels", "bug\nquestion\n")
        page.fill("#id_guidelines", "Is it a **bug**?")
        page.click("[data-testid=new-project-form] button[type=submit]")
        page.wait_for_url(re.compile(r".*/manage/\d+/$"))
        expect(page.get_by_test_id("messages")).to_contain_text("Created tickets")

        page.fill("#id_user", "nobody")
        page.click("[data-testid=member-form] button[type=submit]")
        expect(page.get_by_test_id("member-form")).to_contain_text("No active user is named “nobody”")
        page.fill("#id_user", "ann")
        page.select_option("#id_role", "annotator")
        page.click("[data-testid=member-form] button[type=submit]")
        expect(page.get_by_test_id("messages")).to_contain_text("ann is now annotator")
        expect(page.get_by_test_id("member-ann")).to_be_visible()

        page.select_option("#id_format", "csv")
        csv = b"text,label\nthe app crashes on start,\n"
        page.set_input_files("#id_file", {"name": "tickets.csv", "mimeType": "text/csv", "buffer": csv})
        page.click("[data-testid=import-form] button[type=submit]")
        expect(page.get_by_test_id("messages")).to_contain_text("Imported 1 record(s): 1 new task(s).")
        snapshot(page, "manage")

    project = Project.objects.get(name="tickets")
    assert (project.labels, project.guidelines) == (["bug", "question"], "Is it a **bug**?")
    page = login(browser, server, "ann", "/")
    with screenshot_on_failure(page, request):
        page.get_by_role("link", name="Label").click()
        expect_task(page, "the app crashes on start")
        expect(page.get_by_test_id("guidelines")).to_contain_text("Is it a bug?")
        expect(page.get_by_test_id("label-button-2")).to_contain_text("question")
