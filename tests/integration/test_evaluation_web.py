"""The evaluation pages with Django's test client on MariaDB: leaderboard, confusion matrix and filtered cases,
refusals, sending a case back for re-labelling, comparing two versions, exports and plots (real DVC snapshots,
real trained models), and 10,000 cases listed with filters in well under a second."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.services import create_project, set_role
from datastore.models import DatasetVersion, Evaluation, ModelVersion, Prediction, RelabelRequest, Task
from evaluation.evaluate import headline, is_correct
from evaluation.metrics import metrics_for
from evaluation.records import PAGE_SIZE, CaseFilter, cases, compare, run_evaluation, short_label
from tests.browser_support import images
from tests.eval_helpers import LABELS, evaluated_project
from tests.helpers import streamed_body

pytestmark = pytest.mark.django_db
WORDS = ["the", "film", "was", "wonderful", "dull", "slow", "story", "opens", "on", "friday", "great", "awful", "plot"]


def page(client: Client, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.content[:500])
    return response, lxml.html.fromstring(response.content)


def texts(tree: Any, xpath: str) -> list[str]:
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


def listed(tree: Any) -> list[tuple[str, str]]:
    """(true, predicted) of each case row on the page."""
    return [(row.get("data-true"), row.get("data-predicted")) for row in tree.xpath('//tr[@data-testid="case-row"]')]


def login(username: str, project: Any = None, role: str = "") -> Client:
    account = get_user_model().objects.get_or_create(username=username)[0]
    if project is not None:
        set_role(project, account, role)
    client = Client()
    client.force_login(account)
    return client


def test_leaderboard_matrix_filters_compare_exports_and_plots(tmp_path: Path) -> None:
    ev = evaluated_project(tmp_path)
    first, second = ev.first, ev.second
    manager = login("manager")

    _, board = page(manager, "/evaluations/")
    assert texts(board, '//tr[@data-testid="leaderboard-row"]/th') == [str(ev.weak), str(ev.strong)]
    assert board.xpath(f'//a[@id="evaluation-link-{first.pk}"]/@href') == [f"/evaluations/{first.pk}/"]
    assert board.xpath(f'//a[@id="evaluation-link-{second.pk}"]')[0].get("class") == (
        "best" if second.score >= first.score else None
    )

    # The confusion matrix: each cell links to the list of exactly its cases.
    response, tree = page(manager, f"/evaluations/{first.pk}/")
    assert f"n={first.n}" in texts(tree, '//*[@data-testid="evaluation-header"]')[0]
    assert texts(tree, '//table[@id="per-class"]/tbody/tr/th') == LABELS
    assert tree.xpath('//img[@id="reliability-diagram"]/@src') == [f"/evaluations/{first.pk}/plots/reliability.png"]
    matrix = first.metrics["confusion_matrix"]["matrix"]
    cells = tree.xpath('//a[@data-testid="cm-cell"]')
    assert len(cells) == sum(1 for row in matrix for count in row if count)
    for cell in cells:
        true, predicted, count = cell.get("data-true"), cell.get("data-predicted"), int(cell.get("data-count"))
        assert count == matrix[LABELS.index(true)][LABELS.index(predicted)]
        filtered, rows = page(manager, cell.get("href").split("#")[0])
        assert filtered.context["page"].paginator.count == count == cases(first, CaseFilter(true, predicted)).count()
        assert listed(rows) == [(true, predicted)] * min(count, PAGE_SIZE)
        assert rows.xpath('//td[contains(@class, "active")]//a/@id') == [cell.get("id")]
    assert response.context["page"].paginator.count == first.n
    assert len(listed(tree)) == min(first.n, PAGE_SIZE)

    # Filters, order, search and pages
    response, tree = page(manager, f"/evaluations/{first.pk}/?outcome=wrong&order=-confidence&max_confidence=0.99")
    shown = response.context["page"].object_list
    assert response.context["page"].paginator.count == first.predictions.filter(correct=False).count()
    assert all(not p.correct for p in shown) and all(t != p for t, p in listed(tree))
    assert [p.confidence for p in shown] == sorted((p.confidence for p in shown), reverse=True)
    assert "scores" in shown[0].get_deferred_fields() and "text" in shown[0].get_deferred_fields()
    seen = []  # every case once over the pages (the test split holds about 50; pages are tested on 10,000 below)
    for number in range(1, -(-first.n // PAGE_SIZE) + 1):
        response, tree = page(manager, f"/evaluations/{first.pk}/?order=record&page={number}")
        seen += [p.record_id for p in response.context["page"]]
    assert seen == sorted(first.predictions.values_list("record_id", flat=True))
    first_case = first.predictions.order_by("record_id").first()
    assert first_case is not None
    word = first_case.text.split()[0]
    response, _ = page(manager, f"/evaluations/{first.pk}/?q={word}")
    assert response.context["page"].paginator.count == cases(first, CaseFilter(q=word)).count() >= 1
    for query, message in (
        ("outcome=maybe", "outcome must be right or wrong"),
        ("min_confidence=high", "min_confidence must be a number"),
        ("max_confidence=1.5", "max_confidence must be between 0 and 1"),
        ("order=text", "order must be one of"),
    ):
        _, tree = page(manager, f"/evaluations/{first.pk}/?{query}", 400)
        assert message in texts(tree, '//*[@data-testid="filter-error"]')[0]
        assert (
            page(manager, f"/evaluations/{first.pk}/export.csv?{query}", 400)[0]
            .content.decode()
            .startswith(message.split()[0])
        )

    # Compare: the page lists what records.compare finds; the evaluation page offers the other version.
    _, tree = page(manager, f"/evaluations/{first.pk}/")
    assert tree.xpath('//select[@id="compare-with"]/option/@value') == [str(second.pk)]
    diff = compare(first, second)
    _, tree = page(manager, f"/evaluations/compare/?a={first.pk}&b={second.pk}")
    for key in ("fixed", "broken", "both_wrong"):  # one tab each, the first page of 50 (test_pages_eval pages on)
        assert texts(tree, f'//*[@data-testid="count-{key}"]') == [str(len(diff[key]))]
        _, shown = page(manager, f"/evaluations/compare/?a={first.pk}&b={second.pk}&show={key}")
        rows = shown.xpath(f'//table[@id="compare-{key}"]//tr[@data-testid="compare-row"]')
        assert [row.get("data-record") for row in rows] == [a.record_id for a, _ in diff[key]][:50]
    assert texts(tree, '//*[@data-testid="compare-delta"]')[0] == f"{second.score - first.score:+.3f}"
    val = run_evaluation(ev.strong, ev.dataset, "val", ev.repo)
    _, tree = page(manager, f"/evaluations/compare/?a={first.pk}&b={val.pk}", 400)
    assert "one dataset version and split" in texts(tree, '//*[@data-testid="compare-error"]')[0]
    _, tree = page(manager, f"/evaluations/compare/?a={first.pk}", 400)
    assert texts(tree, '//*[@data-testid="compare-error"]') == [
        f"choose two evaluations to compare: a and b must be evaluation ids, not '{first.pk}' and ''"
    ]

    # Exports (all cases, or the filtered ones) and plots
    response = manager.get(f"/evaluations/{first.pk}/export.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith('attachment; filename="evaluation-')
    document = json.loads(streamed_body(response))
    assert len(document["predictions"]) == first.n and document["metrics"]["accuracy"] == first.score
    response = manager.get(f"/evaluations/{first.pk}/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(streamed_body(response).decode())))
    assert len(rows) == first.n and {r["record_id"] for r in rows} == {r["record_id"] for r in document["predictions"]}
    wrong = streamed_body(manager.get(f"/evaluations/{first.pk}/export.csv?outcome=wrong")).decode()
    assert len(list(csv.DictReader(io.StringIO(wrong)))) == first.predictions.filter(correct=False).count()
    for kind in ("reliability", "confusion"):
        png = manager.get(f"/evaluations/{first.pk}/plots/{kind}.png")
        assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")
        svg = manager.get(f"/evaluations/{first.pk}/plots/{kind}.svg")
        assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content[:2000]
    assert manager.get(f"/evaluations/{first.pk}/plots/roc.png").status_code == 404


def test_who_may_see_and_send_back(tmp_path: Path) -> None:
    ev = evaluated_project(tmp_path)
    second = ev.second
    case = second.predictions.filter(correct=False).order_by("record_id").first()
    assert case is not None
    task = Task.objects.get(project=ev.project, item=case.item)
    case_url = f"/evaluations/{second.pk}/cases/{case.pk}/"
    send_url = f"{case_url}send-back/"

    stranger = login("stranger")  # in no project: nothing shows, nothing leaks
    _, board = page(stranger, "/evaluations/")
    assert board.xpath('//*[@data-testid="leaderboard-empty"]') and not board.xpath("//table")
    for url in (
        f"/evaluations/{second.pk}/",
        case_url,
        f"/evaluations/{second.pk}/export.json",
        f"/evaluations/{second.pk}/export.csv",
        f"/evaluations/{second.pk}/plots/reliability.png",
        f"/evaluations/{second.pk}/plots/confusion.svg",
        f"/evaluations/compare/?a={ev.first.pk}&b={second.pk}",
        f"/evaluations/{second.pk + 1000}/",
    ):
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(send_url, {"reason": "x"}).status_code == 404
    assert Client().get(case_url).status_code == 302, "login required"

    annotator = login("ann", ev.project, "annotator")  # sees everything, may not send back
    _, tree = page(annotator, "/evaluations/")
    assert len(tree.xpath('//tr[@data-testid="leaderboard-row"]')) == 2
    _, tree = page(annotator, f"{case_url}?outcome=wrong")
    assert texts(tree, '//*[@data-testid="case-true"]') == [case.true_label]
    assert texts(tree, '//*[@data-testid="case-predicted"]') == [case.predicted_label]
    assert texts(tree, '//*[@data-testid="case-text"]') == [" ".join(case.text.split())]
    assert texts(tree, '//table[@id="case-scores"]/tbody/tr/th')[0] == case.predicted_label
    assert tree.xpath('//a[@id="back-to-evaluation"]/@href') == [f"/evaluations/{second.pk}/?outcome=wrong#cases"]
    assert not tree.xpath('//form[@id="send-back-form"]')
    first_run_case = ev.first.predictions.first()
    assert first_run_case is not None
    _, tree = page(annotator, f"/evaluations/{second.pk}/cases/{first_run_case.pk}/", 404)
    response = annotator.post(send_url, {"reason": "looks mislabelled"})
    assert response.status_code == 403 and b"needs the role manager or reviewer" in response.content

    reviewer = login("rev", ev.project, "reviewer")
    _, tree = page(reviewer, case_url)
    assert tree.xpath('//form[@id="send-back-form"]/@action') == [send_url]
    response = reviewer.post(send_url, {"reason": "   "})
    assert response.status_code == 400 and b"needs a reason of 1 to 500" in response.content
    assert not RelabelRequest.objects.exists() and Task.objects.get(pk=task.pk).status == "done"

    gold = task.final_value
    response = reviewer.post(f"{send_url}?outcome=wrong", {"reason": "the text reads as the prediction"}, follow=True)
    assert response.redirect_chain == [(f"{case_url}?outcome=wrong", 302)]
    tree = lxml.html.fromstring(response.content)
    assert "sent back to the annotation queue" in texts(tree, '//*[@data-testid="messages"]')[0]
    assert "Waiting for re-labelling since" in texts(tree, '//*[@data-testid="relabel-waiting"]')[0]
    assert not tree.xpath('//form[@id="send-back-form"]')
    request = RelabelRequest.objects.get()
    assert (request.task_id, request.prediction_id, request.requested_by.username) == (task.pk, case.pk, "rev")
    assert request.reason == "the text reads as the prediction" and request.previous["final_value"] == gold
    task.refresh_from_db()
    assert (task.status, task.final_value) == ("open", None)
    response = reviewer.post(send_url, {"reason": "again"})
    assert response.status_code == 409 and b"already sent back" in response.content

    other = second.predictions.exclude(pk=case.pk).first()  # a record whose item left the project
    assert other is not None
    Prediction.objects.filter(pk=other.pk).update(item=None)
    response = reviewer.post(f"/evaluations/{second.pk}/cases/{other.pk}/send-back/", {"reason": "x"})
    assert response.status_code == 400 and b"no item in the project" in response.content
    assert RelabelRequest.objects.count() == 1


def stored_evaluation(
    task: str, labels: list[str], cases: list[dict[str, Any]], items: Sequence[Any] = ()
) -> Evaluation:
    """An evaluation stored as ``run_evaluation`` stores one, without a model run: ``cases`` are dicts with
    ``text``, ``label``, ``predicted``, ``confidence`` and ``scores``; ``items`` (optional) become the project's
    tasks, the i-th case's item the i-th item."""
    project = create_project(f"{task}-project", task, labels, list(items), members=[])
    dataset = DatasetVersion.objects.create(name=f"{task}-v1", project=project, dvc_md5="-", git_rev="-", path=task)
    model = ModelVersion.objects.create(name=task, version=1, task_type=task, archive_path="-", archive_sha256="-")
    y_true, y_pred = [c["label"] for c in cases], [c["predicted"] for c in cases]
    options: dict[str, Any] = {"texts": [c["text"] for c in cases]} if task == "spans" else {}
    if task in ("text_classification", "image_classification"):
        options["confidences"] = [c["confidence"] for c in cases]
    metrics = metrics_for(task, y_true, y_pred, labels, **options)
    score, macro_f1 = headline(task, metrics)
    evaluation = Evaluation.objects.create(
        model_version=model, dataset_version=dataset, split="test", task_type=task, labels=labels, metrics=metrics,
        n=len(cases), score=score, macro_f1=macro_f1,
    )  # fmt: skip
    items = list(items) + [None] * (len(cases) - len(items))
    Prediction.objects.bulk_create(
        (
            Prediction(
                evaluation=evaluation, record_id=c.get("id", f"r{i:05d}"), item=item, text=c["text"],
                true_label=short_label(task, c["label"]), predicted_label=short_label(task, c["predicted"]),
                true_value=c["label"], predicted_value=c["predicted"], confidence=c["confidence"],
                correct=is_correct(task, c["label"], c["predicted"]), scores=c.get("scores", {}),
            )
            for i, (c, item) in enumerate(zip(cases, items, strict=True))
        ),
        batch_size=2000,
    )  # fmt: skip
    return evaluation


def test_span_multi_label_and_image_evaluations(tmp_path: Path) -> None:
    staff = Client()
    staff.force_login(get_user_model().objects.create(username="staff", is_staff=True))
    text = "Tom <b>met</b> Ann & Bob in Paris"
    spans = stored_evaluation(
        "spans",
        ["PER", "LOC"],
        [
            {
                "text": text,
                "label": [{"start": 0, "end": 3, "label": "PER"}, {"start": 15, "end": 18, "label": "PER"},
                          {"start": 28, "end": 33, "label": "LOC"}],
                "predicted": [{"start": 0, "end": 3, "label": "PER"}, {"start": 28, "end": 33, "label": "PER"}],
                "confidence": 0.7,
            },
            {"text": "nobody here", "label": [], "predicted": [], "confidence": 0.9},
        ],
    )  # fmt: skip
    _, tree = page(staff, f"/evaluations/{spans.pk}/")
    assert tree.xpath('//table[@id="per-label-strict"]') and tree.xpath('//table[@id="per-label-token"]')
    assert not tree.xpath('//table[@id="confusion-matrix"]') and not tree.xpath('//select[@id="filter-true"]')
    assert len(listed(tree)) == 2
    for kind in ("reliability", "confusion"):
        assert staff.get(f"/evaluations/{spans.pk}/plots/{kind}.png").status_code == 404
    case = spans.predictions.get(record_id="r00000")
    response, tree = page(staff, f"/evaluations/{spans.pk}/cases/{case.pk}/")
    true, predicted = (tree.xpath(f'//*[@data-testid="case-text-{side}"]')[0] for side in ("true", "predicted"))
    assert [(m.get("data-label"), m.text) for m in true.xpath(".//mark")] == [
        ("PER", "Tom"), ("PER", "Ann"), ("LOC", "Paris")
    ]  # fmt: skip
    assert [(m.get("data-label"), m.text) for m in predicted.xpath(".//mark")] == [("PER", "Tom"), ("PER", "Paris")]
    assert true.text_content() == text and not true.xpath(".//b"), "the text is escaped, not markup"
    assert b"&lt;b&gt;met&lt;/b&gt;" in response.content
    assert texts(tree, '//table[@id="case-spans"]/tbody/tr/td[6]') == ["match", "missed", "missed", "extra"]
    assert tree.xpath('//*[@data-testid="relabel-unavailable"]'), "a record without an item cannot be sent back"

    multi = stored_evaluation(
        "multi_label",
        ["a", "b", "c"],
        [
            {"text": "one", "label": ["a", "b"], "predicted": ["b", "c"], "confidence": 0.6},
            {"text": "two", "label": ["a", "b"], "predicted": ["a", "b"], "confidence": 0.8},
            {"text": "three", "label": ["c"], "predicted": [], "confidence": 0.5},
        ],
    )
    _, tree = page(staff, f"/evaluations/{multi.pk}/")
    assert texts(tree, '//table[@id="per-label"]/tbody/tr/th') == ["a", "b", "c"]
    assert tree.xpath('//select[@id="filter-true"]/option/@value') == ["", "a,b", "b,c", "c"]
    response, tree = page(staff, f"/evaluations/{multi.pk}/?true=a,b&outcome=wrong")
    assert listed(tree) == [("a,b", "b,c")]
    case = response.context["page"][0]
    _, tree = page(staff, f"/evaluations/{multi.pk}/cases/{case.pk}/")
    assert texts(tree, '//*[@data-testid="case-missed"]') == ["a"] and texts(
        tree, '//*[@data-testid="case-extra"]'
    ) == ["c"]

    digits = images(tmp_path, {"zero": (0, 0, 0), "one": (255, 255, 255)})
    image = stored_evaluation(
        "image_classification",
        ["0", "1"],
        [
            {"text": "", "label": "0", "predicted": "1", "confidence": 0.55, "scores": {"0": 0.45, "1": 0.55}},
            {"text": "", "label": "1", "predicted": "1", "confidence": 0.9, "scores": {"0": 0.1, "1": 0.9}},
        ],
        digits,
    )
    _, tree = page(staff, f"/evaluations/{image.pk}/?order=record")
    assert tree.xpath('//img[@class="thumb"]/@src') == [f"/api/items/{item.pk}/image/" for item in digits]
    wrong = image.predictions.get(correct=False)
    _, tree = page(staff, f"/evaluations/{image.pk}/cases/{wrong.pk}/")
    src = tree.xpath('//img[@data-testid="case-image"]/@src')
    assert src == [f"/api/items/{digits[0].pk}/image/"] and staff.get(src[0]).status_code == 200
    assert texts(tree, '//table[@id="case-scores"]/tbody/tr/th') == ["1", "0"]
    response = staff.post(f"/evaluations/{image.pk}/cases/{wrong.pk}/send-back/", {"reason": "a zero?"})
    assert response.status_code == 409 and b"not fully labelled yet" in response.content


def big_evaluation(n: int = 10_000) -> Evaluation:
    """An evaluation with ``n`` stored predictions (no model run: the page's cost is the database's)."""
    rng = random.Random(7)
    cases = []
    for _ in range(n):
        true = rng.choice(LABELS)
        predicted = true if rng.random() < 0.7 else rng.choice(LABELS)
        cases.append(
            {
                "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60))),
                "label": true,
                "predicted": predicted,
                "confidence": round(rng.uniform(0.34, 1.0), 4),
                "scores": {label: rng.random() for label in LABELS},
            }
        )
    return stored_evaluation("text_classification", LABELS, cases)


def test_ten_thousand_cases_are_listed_with_filters_in_a_fixed_number_of_queries(
    django_assert_max_num_queries: Any,
) -> None:
    """Speed is bench/evaluation.py's to measure; here: a bounded number of queries and correct pages."""
    evaluation = big_evaluation()
    staff = get_user_model().objects.create(username="staff", is_staff=True)
    client = Client()
    client.force_login(staff)
    base = f"/evaluations/{evaluation.pk}/"
    page(client, base)  # warm: templates compiled, connection open
    for query in (
        "",
        "?page=200",
        "?outcome=wrong&order=-confidence",
        "?true=negative&predicted=positive&page=3",
        "?min_confidence=0.5&max_confidence=0.9&order=record&page=40",
        "?q=wonderful+dull&outcome=right",
        "?q=r09999",
    ):
        with django_assert_max_num_queries(8):
            response, tree = page(client, base + query)
        assert tree.xpath('//tr[@data-testid="case-row"]') or query.startswith("?q=wonderful")
    assert response.context["page"].paginator.count == 1

    # Pages: in order, disjoint, the filters kept in the links; a bad page number shows the nearest page.
    response, tree = page(client, base + "?outcome=wrong&page=2")
    second = response.context["page"]
    assert second.number == 2 and second.paginator.num_pages == -(-second.paginator.count // PAGE_SIZE)
    assert tree.xpath('//a[@id="page-previous"]/@href') == ["?outcome=wrong&page=1#cases"]
    assert tree.xpath('//a[@id="page-next"]/@href') == ["?outcome=wrong&page=3#cases"]
    first = page(client, base + "?outcome=wrong&page=1")[0].context["page"]
    ids = [p.pk for p in first] + [p.pk for p in second]
    assert len(set(ids)) == 2 * PAGE_SIZE and all(not p.correct for p in [*first, *second])
    assert page(client, base + "?page=abc")[0].context["page"].number == 1
    assert page(client, base + "?page=99999")[0].context["page"].number == 10_000 // PAGE_SIZE
