"""The Vue annotation app in real headless Chromium against gunicorn and MariaDB: label and review by keyboard.

The app must be built first (``cd annotation/frontend && npm ci && npm run build``); the built files are
committed under ``annotation/static/annotation/app``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from annotation.services import create_project, set_role
from datastore.models import Annotation, Assignment, Question, Task
from tests.browser_support import (
    annotate_by_api,
    expect_task,
    images,
    login,
    screenshot_on_failure,
    snapshot,
    texts,
    user,
)

pytestmark = pytest.mark.browser

# The text of each segment that ends a span, with the label tag drawn after it.
SPAN_TAGS_JS = """() => Array.from(document.querySelectorAll('[data-testid="task-text"] [data-tag]'))
  .map((el) => [el.textContent, getComputedStyle(el, '::after').content.replace(/^"|"$/g, '')])"""

# Selects characters [start, end) of an element's text by walking its text nodes, as a mouse drag would.
SELECT_JS = """([testid, start, end]) => {
  const root = document.querySelector(`[data-testid="${testid}"]`);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  let seen = 0, node;
  while ((node = walker.nextNode())) {
    const len = node.textContent.length;
    if (start >= seen && start <= seen + len) range.setStart(node, start - seen);
    if (end >= seen && end <= seen + len) { range.setEnd(node, end - seen); break; }
    seen += len;
  }
  const sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  return sel.toString();
}"""


def test_text_classification_by_keyboard_with_undo_and_skip(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    items = texts("the film was wonderful", "a dull and slow story", "it opens on friday", "unreadable ###", "late")
    annotator = user("ann")
    project = create_project(
        "sentiment",
        "text_classification",
        ["positive", "negative", "neutral"],
        items,
        guidelines="# Sentiment\n\nPick the **overall** tone.\n\n- positive: praise\n- negative: complaints",
        members=[annotator],
    )
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        status = page.get_by_test_id("status")
        expect(page.get_by_test_id("guidelines")).to_contain_text("Pick the overall tone.")
        expect(page.get_by_test_id("label-button-1")).to_contain_text("1")
        expect_task(page, items[0].text)
        page.keyboard.press("Enter")  # nothing chosen yet: refused in the page, nothing sent
        expect(status).to_contain_text("Choose a label first")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        expect(status).to_have_text("Saved: positive")
        expect_task(page, items[1].text)
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        expect(status).to_have_text("Saved: negative")
        expect_task(page, items[2].text)

        page.keyboard.press("u")  # the previous task comes back, its answer selected, and is labelled again
        expect(status).to_contain_text("Undone")
        expect_task(page, items[1].text)
        expect(page.get_by_test_id("label-button-2")).to_have_attribute("aria-checked", "true")
        # The labels are a radio group: one checked, one radio in the tab order, no listbox around buttons.
        group = page.get_by_role("radiogroup", name="Label")
        radios = group.get_by_role("radio")
        expect(radios).to_have_count(3)
        expect(page.locator("[role=listbox], [aria-selected]")).to_have_count(0)
        for _ in range(4):  # from "negative", round once and on to the third
            page.keyboard.press("ArrowDown")
        third = page.get_by_test_id("label-button-3")
        expect(third).to_have_attribute("aria-checked", "true")
        expect(group.get_by_role("radio", checked=True)).to_have_count(1)
        assert [radios.nth(i).get_attribute("tabindex") for i in range(3)] == ["-1", "-1", "0"]
        # Inside the group the arrows move focus and check together; Enter there still submits.
        third.focus()
        page.keyboard.press("ArrowRight")  # wraps round to the first
        expect(page.get_by_test_id("label-button-1")).to_be_focused()
        expect(page.get_by_test_id("label-button-1")).to_have_attribute("aria-checked", "true")
        page.keyboard.press("ArrowLeft")
        expect(third).to_be_focused()
        expect(third).to_have_attribute("aria-checked", "true")
        snapshot(page, "text-classification")
        page.keyboard.press("Enter")
        expect(status).to_have_text("Saved: neutral")
        expect_task(page, items[2].text)
        page.keyboard.press("3")
        page.keyboard.press("Enter")
        expect_task(page, items[3].text)

        page.keyboard.press("s")
        reason = page.get_by_test_id("skip-reason")
        expect(reason).to_be_focused()
        reason.type("not English")
        reason.press("Enter")
        expect(status).to_have_text("Skipped.")
        expect_task(page, items[4].text)

        page.keyboard.press("?")
        page.get_by_test_id("question-input").type("Is sarcasm negative?")
        page.keyboard.press("Enter")
        expect(status).to_contain_text("Question sent")
        # The hold runs out before the answer is sent: the server's reason is shown and the task stays.
        Assignment.objects.filter(annotator=annotator, task__item=items[4]).update(expires_at=timezone.now())
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        expect(status).to_contain_text("Not saved: your hold on this task expired")
        expect_task(page, items[4].text)
        page.keyboard.press("n")
        expect(page.get_by_test_id("done")).to_contain_text("All done")

    rows = Annotation.objects.filter(annotator=annotator).order_by("task__item_id")
    assert [(r.task.item_id, r.value) for r in rows] == [
        (items[0].pk, "positive"),
        (items[1].pk, "neutral"),
        (items[2].pk, "neutral"),
    ]
    assert all(r.lead_time > 0 for r in rows)
    skipped = Assignment.objects.get(annotator=annotator, task__item=items[3])
    assert (skipped.status, skipped.skip_reason) == (Assignment.Status.SKIPPED, "not English")
    assert Question.objects.get(project=project).text == "Is sarcasm negative?"


def test_multi_label_by_keyboard(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    items = texts("the team won the election debate", "new phones ship next week")
    annotator = user("ann")
    project = create_project("topics", "multi_label", ["sports", "politics", "tech"], items, members=[annotator])
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        status = page.get_by_test_id("status")
        expect_task(page, items[0].text)
        page.keyboard.press("1")
        page.keyboard.press("2")
        page.keyboard.press("3")
        page.keyboard.press("3")  # toggled off again
        # The labels are toggle buttons in a named group: aria-pressed says which are on.
        buttons = page.get_by_role("group", name="Labels that apply").get_by_role("button")
        expect(buttons).to_have_count(3)
        assert [buttons.nth(i).get_attribute("aria-pressed") for i in range(3)] == ["true", "true", "false"]
        expect(page.locator("[role=listbox], [aria-selected], [role=radio]")).to_have_count(0)
        page.keyboard.press("Enter")
        expect(status).to_have_text("Saved: politics, sports")
        expect_task(page, items[1].text)
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        page.keyboard.press(" ")  # toggles the highlighted label (tech)
        expect(page.get_by_test_id("label-button-3")).to_have_attribute("aria-pressed", "true")
        snapshot(page, "multi-label")
        # A focused button is the one Space toggles, once a press; the arrows move focus along the group.
        page.get_by_test_id("label-button-1").focus()
        page.keyboard.press(" ")
        expect(page.get_by_test_id("label-button-1")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press(" ")
        expect(page.get_by_test_id("label-button-1")).to_have_attribute("aria-pressed", "false")
        page.keyboard.press("ArrowRight")
        expect(page.get_by_test_id("label-button-2")).to_be_focused()
        expect(page.get_by_test_id("label-button-2")).to_have_attribute("aria-pressed", "false")
        page.keyboard.press("Enter")
        expect(status).to_have_text("Saved: tech")
        expect(page.get_by_test_id("done")).to_be_visible()

    values = dict(Annotation.objects.filter(annotator=annotator).values_list("task__item_id", "value"))
    assert values == {items[0].pk: ["politics", "sports"], items[1].pk: ["tech"]}
    assert all(lt > 0 for lt in Annotation.objects.values_list("lead_time", flat=True))


def test_spans_by_keyboard_and_by_mouse_selection(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    # The emoji is one character but two UTF-16 units: offsets stored must count characters, as Python does.
    first, second = "Alice met Bob in New York today", "Dr Smith \U0001f9ea works at Acme Corp now"
    items = texts(first, second)
    annotator = user("ann")
    project = create_project("ner", "spans", ["PER", "LOC", "ORG"], items, members=[annotator])
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        status = page.get_by_test_id("status")
        expect_task(page, first)
        page.keyboard.press("1")  # the cursor starts on "Alice"; labelling moves it to "met"
        page.keyboard.press("ArrowRight")  # "Bob"
        page.keyboard.press("1")  # cursor now on "in"
        page.keyboard.press("3")  # a wrong span on "in" (the cursor moves on to "New")...
        expect(page.get_by_test_id("span-3")).to_contain_text("in")
        page.keyboard.press("Backspace")  # ...removed again
        expect(page.get_by_test_id("span-3")).to_have_count(0)
        page.keyboard.press("ArrowLeft")  # "in"
        page.keyboard.press("ArrowRight")  # "New"
        page.keyboard.press("Shift+ArrowRight")  # "New York"
        page.keyboard.press("2")
        expect(page.get_by_test_id("span-3")).to_contain_text("New York")
        # Each span shows its label as text after its last word (the colour only repeats it), and the tags
        # leave the item's own text as it was.
        assert page.evaluate(SPAN_TAGS_JS) == [["Alice", "PER"], ["Bob", "PER"], ["New York", "LOC"]]
        expect_task(page, first)
        expect(page.get_by_role("group", name="Label the selected words as").get_by_role("button")).to_have_count(3)
        snapshot(page, "spans")
        page.keyboard.press("Enter")
        expect(status).to_contain_text("Saved:")
        expect_task(page, second)

        start = len(second[: second.index("Acme Corp")].encode("utf-16-le")) // 2  # DOM offsets are UTF-16
        selected = page.evaluate(SELECT_JS, ["task-text", start, start + len("Acme Corp")])
        assert selected == "Acme Corp"
        page.keyboard.press("3")
        expect(page.get_by_test_id("span-1")).to_contain_text("Acme Corp")
        # a real drag with the mouse over "Smith"
        box = page.evaluate(
            """([s, e]) => { const root = document.querySelector('[data-testid="task-text"]');
                const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT); let seen = 0, n;
                const r = document.createRange();
                while ((n = w.nextNode())) { const l = n.textContent.length;
                  if (s >= seen && s < seen + l) r.setStart(n, s - seen);
                  if (e > seen && e <= seen + l) { r.setEnd(n, e - seen); break; } seen += l; }
                const b = r.getBoundingClientRect(); return {x: b.x, y: b.y, w: b.width, h: b.height}; }""",
            [3, 8],
        )
        page.mouse.move(box["x"] + 1, box["y"] + box["h"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["w"] - 1, box["y"] + box["h"] / 2, steps=5)
        page.mouse.up()
        page.keyboard.press("1")
        # The list is in text order: "Smith", labelled last, comes first.
        expect(page.get_by_test_id("span-1")).to_contain_text("Smith")
        expect(page.get_by_test_id("span-2")).to_contain_text("Acme Corp")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("done")).to_be_visible()

    stored = dict(Annotation.objects.filter(annotator=annotator).values_list("task__item_id", "value"))
    assert stored[items[0].pk] == [
        {"start": 0, "end": 5, "label": "PER"},
        {"start": 10, "end": 13, "label": "PER"},
        {"start": 17, "end": 25, "label": "LOC"},
    ]
    assert [first[s["start"] : s["end"]] for s in stored[items[0].pk]] == ["Alice", "Bob", "New York"]
    assert [(second[s["start"] : s["end"]], s["label"]) for s in stored[items[1].pk]] == [
        ("Smith", "PER"),
        ("Acme Corp", "ORG"),
    ]


def test_image_classification_by_keyboard(browser: Any, server: str, request: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    items = images(tmp_path, {"red": (220, 30, 30), "blue": (30, 60, 220)})
    annotator = user("ann")
    project = create_project("colours", "image_classification", ["red", "blue"], items, members=[annotator])
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        status = page.get_by_test_id("status")
        image = page.get_by_test_id("task-image")
        expect(image).to_have_attribute("src", f"/api/items/{items[0].pk}/image/")
        page.wait_for_function("() => document.querySelector('[data-testid=task-image]').naturalWidth === 64")
        page.keyboard.press("1")
        radios = page.get_by_role("radiogroup", name="What the image shows").get_by_role("radio")
        expect(radios).to_have_count(2)
        expect(page.get_by_test_id("label-button-1")).to_have_attribute("aria-checked", "true")
        snapshot(page, "image")
        page.keyboard.press("Enter")
        expect(status).to_have_text("Saved: red")
        expect(image).to_have_attribute("src", f"/api/items/{items[1].pk}/image/")
        page.keyboard.press("2")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("done")).to_be_visible()

    values = dict(Annotation.objects.filter(annotator=annotator).values_list("task__item_id", "value"))
    assert values == {items[0].pk: "red", items[1].pk: "blue"}


def test_reviewer_adjudicates_disagreements(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    items = texts("great value for money", "arrived on time", "broke after a day")
    first, second, reviewer = user("ann1"), user("ann2"), user("rev")
    labels = ["positive", "negative", "neutral"]
    project = create_project("review", "text_classification", labels, items, overlap=2, members=[first, second])
    set_role(project, reviewer, "reviewer")
    answers = {first: ["positive", "neutral", "negative"], second: ["negative", "positive", "negative"]}
    annotate_by_api(server, project.pk, answers)  # two annotators label every task through the REST API

    page = login(browser, server, "rev", f"/review/{project.pk}/")
    with screenshot_on_failure(page, request):
        rows = page.get_by_test_id("review-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text(items[0].text)
        expect(rows.nth(0)).to_contain_text("ann1")
        expect(rows.nth(0)).to_contain_text("ann2")
        expect(page.get_by_test_id("dashboard-tasks")).to_have_text("3")
        expect(page.get_by_test_id("krippendorff-alpha")).not_to_have_text("")
        expect(rows.nth(0)).to_have_attribute("aria-current", "true")
        page.keyboard.press("2")  # the first row is focused
        task_id = rows.nth(0).get_attribute("data-task-id")
        final = rows.nth(0).get_by_role("radiogroup", name=f"Final label of task {task_id}")
        expect(final.get_by_role("radio", checked=True)).to_have_text("2 negative")
        snapshot(page, "review")
        page.keyboard.press("Enter")
        expect(rows).to_have_count(1)
        expect(page.get_by_test_id("status")).to_contain_text("final label negative")
        rows.nth(0).get_by_test_id("final-label-3").click()
        rows.nth(0).get_by_test_id("confirm").click()
        expect(page.get_by_test_id("review-empty")).to_be_visible()
        expect(page.get_by_test_id("dashboard-adjudicated")).to_have_text("2")

    finals = dict(Task.objects.filter(project=project).values_list("item_id", "final_value"))
    assert finals == {items[0].pk: "negative", items[1].pk: "neutral", items[2].pk: None}
