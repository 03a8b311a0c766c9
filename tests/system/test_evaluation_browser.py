"""The evaluation pages in real headless Chromium against gunicorn and MariaDB: from the leaderboard to a
confusion-matrix cell, a case sent back for re-labelling, and two model versions compared."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from datastore.models import RelabelRequest, Task
from evaluation.records import compare
from tests.browser_support import PASSWORD, login, screenshot_on_failure, snapshot
from tests.eval_helpers import LABELS, evaluated_project

pytestmark = pytest.mark.browser


def test_matrix_cell_to_case_to_send_back_and_compare(browser: Any, server: str, request: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    ev = evaluated_project(tmp_path)
    ev.manager.set_password(PASSWORD)
    ev.manager.save()
    first, second = ev.first, ev.second
    matrix = first.metrics["confusion_matrix"]["matrix"]
    count, i, j = max((matrix[i][j], i, j) for i in range(len(LABELS)) for j in range(len(LABELS)) if i != j)
    assert count > 0, "the weak model confuses some labels"
    diff = compare(first, second)

    page = login(browser, server, "manager", "/evaluations/")
    with screenshot_on_failure(page, request):
        expect(page.get_by_test_id("leaderboard-row")).to_have_count(2)
        page.click(f"#evaluation-link-{first.pk}")
        expect(page.get_by_test_id("evaluation-title")).to_have_text(f"{ev.weak} on v1:test")
        expect(page.get_by_test_id("case-count")).to_contain_text(f"{first.n} case")
        page.locator("#reliability-diagram").scroll_into_view_if_needed()  # drawn by matplotlib in gunicorn
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth === 500",
            arg=page.locator("#reliability-diagram").element_handle(),
        )

        page.click(f"#cm-cell-{i}-{j}")  # an off-diagonal cell: true LABELS[i] predicted as LABELS[j]
        expect(page.get_by_test_id("case-count")).to_contain_text(f"{count} case")
        rows = page.get_by_test_id("case-row")
        expect(rows).to_have_count(min(count, 50))
        assert {(r.get_attribute("data-true"), r.get_attribute("data-predicted")) for r in rows.all()} == {
            (LABELS[i], LABELS[j])
        }
        expect(page.locator("#filter-true")).to_have_value(LABELS[i])
        snapshot(page, "evaluation-cell")

        link = page.get_by_test_id("case-link").first
        name = link.inner_text()  # the item's name (its title, web address or text), never its record hash
        link.click()
        expect(page.get_by_test_id("case-true")).to_have_text(LABELS[i])
        expect(page.get_by_test_id("case-predicted")).to_have_text(LABELS[j])
        expect(page.get_by_test_id("case-name")).to_have_text(name)
        page.fill("#send-back-reason", "the model's label fits the text better")
        page.click("#send-back-submit")
        expect(page.get_by_test_id("messages")).to_contain_text("sent back to the annotation queue")
        expect(page.get_by_test_id("relabel-waiting")).to_contain_text("Waiting for re-labelling since")
        sent = RelabelRequest.objects.select_related("prediction").get()
        assert sent.prediction is not None
        assert sent.reason == "the model's label fits the text better" and sent.prediction.evaluation_id == first.pk
        assert Task.objects.get(pk=sent.task_id).status == "open"
        snapshot(page, "evaluation-case")

        page.click("#back-to-evaluation")  # back to the same cell's list
        expect(page.get_by_test_id("case-count")).to_contain_text(f"{count} case")
        page.select_option("#compare-with", str(second.pk))
        page.click("#compare-submit")
        expect(page).to_have_url(re.compile(rf"/evaluations/compare/\?a={first.pk}&b={second.pk}$"))
        expect(page.get_by_test_id("compare-title")).to_contain_text(f"{ev.weak} → {ev.strong}")
        expect(page.get_by_test_id("count-fixed")).to_have_text(str(len(diff["fixed"])))
        expect(page.get_by_test_id("count-broken")).to_have_text(str(len(diff["broken"])))
        expect(page.get_by_test_id("compare-fixed").get_by_test_id("compare-row")).to_have_count(len(diff["fixed"]))
        snapshot(page, "evaluation-compare")
