"""Labelling by keyboard only, in real headless Chromium against gunicorn and MariaDB (issue 21).

A ten-label image project labelled with the default keys (the tenth label, "9", has the key 0), its image zoomed
and panned by keys, then the grid of thumbnails; a span before a full stop labelled without the stop; undo showing
the earlier answer selected; a project's own keys; axe-core on each of these screens. The module's tests share one
server and one Chromium (conftest.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from annotation.services import create_project, set_role, update_settings
from datastore.models import Annotation, Item
from tests.axe_support import assert_accessible
from tests.browser_support import expect_task, login, screenshot_on_failure, snapshot, store, texts, user

pytestmark = pytest.mark.browser

DIGITS = [str(d) for d in range(10)]


def digit_images(folder: Path, count: int) -> list[Item]:
    """``count`` 28x28 greyscale PNGs, a digit drawn on each (as MNIST's), stored in order; image i shows i % 10."""
    from PIL import Image, ImageDraw

    rows = []
    for i in range(count):
        path = folder / f"digit-{i}.png"
        image = Image.new("L", (28, 28), i)  # a background of its own: no two images are the same content
        ImageDraw.Draw(image).text((10, 8), str(i % 10), fill=255)
        image.save(path)
        rows.append({"text": "", "image": str(path), "content_hash": hashlib.sha256(path.read_bytes()).hexdigest()})
    return store(rows)


def test_ten_digit_labels_by_their_default_keys_zoomed_and_panned_then_the_grid(
    browser: Any, server: str, request: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    items = digit_images(tmp_path, 13)
    annotator = user("ann")
    project = create_project("digits", "image_classification", DIGITS, items, members=[annotator])
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        status = page.get_by_test_id("status")
        # Keys 1..9 then 0, in label order, shown on the buttons: the tenth label ("9") has 0.
        keys = [*"123456789", "0"]
        for i, key in enumerate(keys):
            button = page.get_by_test_id(f"label-button-{i + 1}")
            expect(button.locator("kbd")).to_have_text(key)
            expect(button).to_have_attribute("aria-keyshortcuts", key)
        image = page.get_by_test_id("task-image")
        page.wait_for_function("() => document.querySelector('[data-testid=task-image]').naturalWidth === 28")
        # Fitted: the 28-pixel image fills the box's height, its pixels kept square and sharp.
        fitted = image.bounding_box()
        assert fitted is not None and fitted["height"] > 300
        expect(image).to_have_css("image-rendering", "pixelated")
        viewer = page.get_by_test_id("image-viewer")
        for _ in range(3):
            page.keyboard.press("+")
        expect(viewer).to_have_attribute("data-zoom", "1.953")  # three steps of 1.25
        expect(viewer).to_have_attribute("data-pan", "0,0")
        zoomed = image.bounding_box()
        assert zoomed is not None and zoomed["height"] == pytest.approx(fitted["height"] * 1.953125, rel=0.01)
        page.keyboard.press("Shift+ArrowRight")
        page.keyboard.press("Shift+ArrowDown")
        expect(viewer).to_have_attribute("data-pan", "-48,-48")  # looking right and down: the image moves left, up
        snapshot(page, "image-zoomed")
        assert_accessible(page, "the image task, zoomed")
        page.keyboard.press("-")
        expect(viewer).to_have_attribute("data-zoom", "1.563")
        page.keyboard.press("f")
        expect(viewer).to_have_attribute("data-zoom", "1.000")
        expect(viewer).to_have_attribute("data-pan", "0,0")

        for i, key in enumerate(keys):  # image i shows the digit i; its label is the (i+1)-th, key keys[i]
            expect(image).to_have_attribute("src", f"/api/items/{items[i].pk}/image/")
            page.keyboard.press(key)
            expect(page.get_by_test_id(f"label-button-{i + 1}")).to_have_attribute("aria-checked", "true")
            page.keyboard.press("Enter")
            expect(status).to_have_text(f"Saved: {i}")

        # The grid: the three left (showing 0, 1, 2). A key labels the thumbnail under the cursor and moves on;
        # Shift+arrow selects, and a key then labels every selected one.
        page.keyboard.press("g")
        thumbs = page.get_by_test_id("image-grid").get_by_role("option")
        expect(thumbs).to_have_count(3)
        page.keyboard.press("1")
        expect(thumbs.nth(0)).to_have_attribute("data-label", "0")
        page.keyboard.press("Shift+ArrowRight")  # the second and the third
        expect(thumbs.nth(1)).to_have_attribute("aria-selected", "true")
        expect(thumbs.nth(2)).to_have_attribute("aria-selected", "true")
        page.keyboard.press("2")
        expect(thumbs.nth(1)).to_have_attribute("data-label", "1")
        expect(thumbs.nth(2)).to_have_attribute("data-label", "1")
        page.keyboard.press("Escape")  # nothing selected: the cursor's thumbnail (the third) is put right
        page.keyboard.press("3")
        expect(thumbs.nth(2)).to_have_attribute("data-label", "2")
        snapshot(page, "image-grid")
        assert_accessible(page, "the grid of thumbnails")
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("done")).to_be_visible()
        expect(status).to_have_text("Saved 3 images.")

    values = dict(Annotation.objects.filter(annotator=annotator).values_list("task__item_id", "value"))
    assert values == {item.pk: str(i % 10) for i, item in enumerate(items)}


def test_a_span_before_a_full_stop_is_labelled_without_it_and_undo_brings_it_back(
    browser: Any, server: str, request: Any
) -> None:
    from playwright.sync_api import expect

    first, second = "We meet Ada on Monday.", "Short."
    items = texts(first, second)
    annotator = user("ann")
    project = create_project("dates", "spans", ["PER", "DATE"], items, members=[annotator])
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        expect_task(page, first)
        for _ in range(4):  # We, meet, Ada, on, Monday: "." is a token of its own
            page.keyboard.press("ArrowRight")
        page.keyboard.press("2")
        expect(page.get_by_test_id("span-1")).to_have_attribute("data-label", "DATE")
        expect(page.get_by_test_id("span-1")).to_contain_text("“Monday”")
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("1")  # "Ada", labelled after "Monday": the list is in text order
        expect(page.get_by_test_id("span-1")).to_contain_text("“Ada”")
        expect(page.get_by_test_id("span-2")).to_contain_text("“Monday”")
        # The label's name is on the text; the cursor is ink, the colour of no label.
        tags = page.evaluate(
            """() => Array.from(document.querySelectorAll('[data-testid="task-text"] [data-tag]'))
              .map((el) => [el.textContent, getComputedStyle(el, '::after').content.replace(/^"|"$/g, '')])"""
        )
        assert tags == [["Ada", "PER"], ["Monday", "DATE"]]
        cursor = page.locator('[data-testid="task-text"] .seg.cur')
        expect(cursor).to_have_text("on")  # labelling moves the cursor on
        label_colours = page.evaluate(
            "() => Array.from(document.querySelectorAll('.label-button'), (b) => getComputedStyle(b).backgroundColor)"
        )
        assert cursor.evaluate("(el) => getComputedStyle(el).backgroundColor") not in label_colours
        snapshot(page, "spans-punctuation")
        assert_accessible(page, "the span task")
        page.keyboard.press("Enter")
        expect_task(page, second)

        page.keyboard.press("u")  # the first text comes back with both spans on it, to be changed
        expect_task(page, first)
        expect(page.get_by_test_id("status")).to_contain_text("Undone")
        expect(page.get_by_test_id("span-2")).to_contain_text("“Monday”")
        page.keyboard.press("Backspace")  # the cursor is on "We": no span there, so the last in the text goes
        expect(page.get_by_test_id("span-2")).to_have_count(0)
        page.keyboard.press("Enter")
        expect_task(page, second)

    stored = Annotation.objects.get(annotator=annotator, task__item=items[0]).value
    assert [(first[s["start"] : s["end"]], s["label"]) for s in stored] == [("Ada", "PER")]


def test_undo_shows_the_earlier_answer_and_a_projects_own_keys_work(browser: Any, server: str, request: Any) -> None:
    from playwright.sync_api import expect

    items = texts("what a lovely day", "the bus never came")
    annotator = user("ann")
    project = create_project("tone", "text_classification", ["pos", "neg", "meh"], items, members=[annotator])
    update_settings(project, _manager(project), hotkeys={"pos": "p", "neg": "x"})
    page = login(browser, server, "ann", f"/annotate/{project.pk}/")
    with screenshot_on_failure(page, request):
        buttons = [page.get_by_test_id(f"label-button-{i}") for i in (1, 2, 3)]
        for button, key in zip(buttons, ["p", "x", "1"], strict=True):  # meh has none of its own: the first free
            expect(button.locator("kbd")).to_have_text(key)
        expect_task(page, items[0].text)
        page.keyboard.press("x")
        page.keyboard.press("Enter")
        expect_task(page, items[1].text)
        page.keyboard.press("u")
        expect_task(page, items[0].text)
        expect(page.get_by_test_id("status")).to_contain_text("with your answer neg")
        expect(buttons[1]).to_have_attribute("aria-checked", "true")  # the earlier answer, selected
        page.keyboard.press("p")  # changed...
        expect(buttons[0]).to_have_attribute("aria-checked", "true")
        page.keyboard.press("Enter")  # ...and sent again
        expect_task(page, items[1].text)

    assert Annotation.objects.get(annotator=annotator, task__item=items[0]).value == "pos"


def _manager(project: Any) -> Any:
    manager = user("boss")
    set_role(project, manager, "manager")
    return manager
