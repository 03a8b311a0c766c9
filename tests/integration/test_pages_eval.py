"""The evaluation, crawl and model-registry pages with Django's test client on MariaDB: items named by title, URL
or file name; a case's previous and next within its filtered list, and its links to the task, the source page and
lineage; compare a page at a time with a delta for every metric; the row-normalised confusion matrix; plot titles
that fit; the registry pages; and the crawls page without Python reprs or microseconds."""

from __future__ import annotations

import re
from typing import Any

import lxml.html
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from annotation.services import create_project, set_role
from datastore import services
from datastore.models import CrawlJob, DatasetVersion, Evaluation, ModelVersion, Prediction, Task
from datastore.naming import item_name
from datastore.services import registry
from evaluation.evaluate import headline
from evaluation.metrics import metrics_for
from evaluation.records import CaseFilter, cases, short_label
from evaluation.rendering import figures
from tests.browser_support import store
from tests.eval_helpers import registered_version

pytestmark = pytest.mark.django_db
LABELS = ["neg", "pos"]
N = 120
WRONG_IN_A = range(70)  # A is wrong on these, right on the rest
WRONG_IN_B = range(100, 105)  # B is wrong only on these: 70 fixed, 5 broken
REPR = re.compile(r"dict_keys|dict_values|\{'|<QuerySet|\d\d:\d\d:\d\d\.\d{3,6}")


def page(client: Client, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.content[:300])
    return lxml.html.fromstring(response.content)


def text_of(tree: Any, xpath: str) -> list[str]:
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


def login(username: str, project: Any = None, role: str = "", staff: bool = False) -> Client:
    account = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": staff})[0]
    if project is not None:
        set_role(project, account, role)
    client = Client()
    client.force_login(account)
    return client


def evaluate(model: ModelVersion, dataset: DatasetVersion, predicted: list[str], items: list[Any]) -> Evaluation:
    """An evaluation stored as ``run_evaluation`` stores one, without a model run."""
    true = [LABELS[i % 2] for i in range(N)]
    confidence = [round(0.5 + (i % 17) / 40, 3) for i in range(N)]  # ties on purpose: the id breaks them
    metrics = metrics_for("text_classification", true, predicted, LABELS, confidences=confidence)
    score, macro_f1 = headline("text_classification", metrics)
    ev = Evaluation.objects.create(
        model_version=model, dataset_version=dataset, split="test", task_type="text_classification", labels=LABELS,
        metrics=metrics, n=N, score=score, macro_f1=macro_f1,
    )  # fmt: skip
    Prediction.objects.bulk_create(
        Prediction(
            evaluation=ev,
            record_id=f"r{i:05d}",
            item=items[i] if i < len(items) else None,
            text=f"review number {i}",
            true_label=short_label("text_classification", t),
            predicted_label=p,
            true_value=t,
            predicted_value=p,
            confidence=c,
            correct=t == p,
            scores={t: c},
        )  # fmt: skip
        for i, (t, p, c) in enumerate(zip(true, predicted, confidence, strict=True))
    )
    return ev


@pytest.fixture
def two() -> dict[str, Any]:
    return seed_two()


def seed_two() -> dict[str, Any]:
    """Model versions 1 (A) and 2 (B) of ``sentiment`` evaluated on one split; three cases have items (a titled
    web page, an untitled one, an imported text)."""
    items = store(
        [
            {"text": "A fine film", "title": "  A fine   film  "},
            {"text": "An untitled page"},
        ]
    )
    items += services.import_texts("pasted", ["a text imported from a file, with no title at all"])
    project = create_project("reviews", "text_classification", LABELS, items, members=[])
    dataset = DatasetVersion.objects.create(name="reviews-v1", project=project, dvc_md5="-", git_rev="-", path="r")
    a_model, b_model = (registered_version(v, dataset, metrics={"test": {"accuracy": 0.5 + v / 10}}) for v in (1, 2))
    true = [LABELS[i % 2] for i in range(N)]
    flip = {"neg": "pos", "pos": "neg"}
    a = evaluate(a_model, dataset, [flip[t] if i in WRONG_IN_A else t for i, t in enumerate(true)], items)
    b = evaluate(b_model, dataset, [flip[t] if i in WRONG_IN_B else t for i, t in enumerate(true)], items)
    return {"project": project, "items": items, "a": a, "b": b, "dataset": dataset}


def test_item_names_never_show_a_pseudo_url_or_hash() -> None:
    digest = "ab" * 32
    assert item_name("  My   title ", "http://x.test/") == "My title"
    assert item_name("", "https://x.test/page") == "https://x.test/page"
    assert item_name("", f"import://2/{digest}", "store/images/cat.png") == "cat.png"
    named = item_name("", f"import://2/{digest}", "", "word " * 40)
    assert digest not in named and "import://" not in named and named.endswith("…") and len(named) <= 60
    assert item_name("", f"import://2/{digest}") == "imported item"


def test_case_pages_walk_their_list_and_link_to_task_source_and_lineage(two: dict[str, Any]) -> None:
    a, project, items = two["a"], two["project"], two["items"]
    manager = login("boss", project, "manager")
    base = f"/evaluations/{a.pk}/"

    # The case list names items (title, web URL, else the text as frozen in the version), never by record hash.
    tree = page(manager, f"{base}?order=record")
    links = tree.xpath('//a[@data-testid="case-link"]')
    assert [link.text_content() for link in links[:4]] == [
        "A fine film", items[1].canonical_url, "review number 2", "review number 3"
    ]  # fmt: skip
    assert not any(re.fullmatch(r"r\d{5}", link.text_content()) for link in links)

    case = a.predictions.get(record_id="r00000")
    tree = page(manager, f"{base}cases/{case.pk}/")
    assert text_of(tree, "//h1") == ["A fine film"]
    assert tree.xpath('//a[@id="case-source-link"]/@href') == [items[0].canonical_url]
    task = Task.objects.get(project=project, item=items[0])
    assert tree.xpath('//a[@id="case-task-link"]/@href') == [f"/data/{project.pk}/tasks/{task.pk}/"]
    assert manager.get(f"/data/{project.pk}/tasks/{task.pk}/").status_code == 200
    assert tree.xpath('//a[@id="case-lineage-link"]/@href') == [f"{base}cases/{case.pk}/lineage/"]
    imported = a.predictions.get(record_id="r00002")
    tree = page(manager, f"{base}cases/{imported.pk}/")
    assert "import://" not in text_of(tree, "//h1")[0] and items[2].content_hash not in text_of(tree, "//h1")[0]
    assert not tree.xpath('//a[@id="case-source-link"]'), "a pseudo-URL is no source page"
    annotator = page(login("ann", project, "annotator"), f"{base}cases/{case.pk}/")
    assert not annotator.xpath('//a[@id="case-task-link"]'), "the data manager is for reviewers and managers"

    # Previous and next walk exactly the list the evaluation page shows (same filter and order, ties by id).
    for query, flt in (("?outcome=wrong", CaseFilter(correct=False)), ("?outcome=right&order=-confidence",
                       CaseFilter(correct=True, order="-confidence"))):  # fmt: skip
        expected = list(cases(a, flt).values_list("pk", flat=True))
        walked, url = [], f"{base}cases/{expected[0]}/{query}"
        while url:
            tree = page(manager, url)
            walked.append(int(url.split("/cases/")[1].split("/")[0]))
            position = text_of(tree, '//*[@data-testid="case-position"]')[0]
            assert position.startswith(f"case {len(walked)} of {len(expected)}"), position
            nxt = tree.xpath('//a[@id="case-next"]/@href')
            url = nxt[0] if nxt else ""
            if len(walked) == 1:
                assert not tree.xpath('//a[@id="case-previous"]')
        assert walked == expected
        tree = page(manager, f"{base}cases/{expected[-1]}/{query}")
        assert tree.xpath('//a[@id="case-previous"]/@href') == [f"{base}cases/{expected[-2]}/{query}"]
    # Back to the page of the list that holds the case.
    wrong = list(cases(a, CaseFilter(correct=False)).values_list("pk", flat=True))
    tree = page(manager, f"{base}cases/{wrong[55]}/?outcome=wrong&page=1")
    assert tree.xpath('//a[@id="back-to-evaluation"]/@href') == [f"{base}?outcome=wrong&page=2#cases"]


def test_compare_pages_records_and_shows_a_delta_for_every_metric(two: dict[str, Any]) -> None:
    a, b = two["a"], two["b"]
    client = login("staff", staff=True)
    url = f"/evaluations/compare/?a={a.pk}&b={b.pk}"
    tree = page(client, url)
    deltas = {row.get("data-metric"): row for row in tree.xpath('//tr[@data-testid="delta-row"]')}
    expected = dict(figures(b))
    assert set(deltas) == {"score", *dict(figures(a))}
    for name, value in figures(a):
        cells = text_of(deltas[name], "./td")
        assert cells[2] == f"{expected[name] - value:+.3f}", name
    assert text_of(tree, '//*[@data-testid="compare-delta"]') == [f"{b.score - a.score:+.3f}"]
    assert "better" in text_of(deltas["accuracy"], "./td")[3]
    per_label = tree.xpath('//tr[@data-testid="compare-label-row"]')
    assert [row.get("data-label") for row in per_label] == LABELS
    for row in per_label:
        label = row.get("data-label")
        for metric in ("f1", "precision", "recall"):
            delta = b.metrics["per_class"][label][metric] - a.metrics["per_class"][label][metric]
            assert text_of(row, f'./td[@data-testid="delta-{metric}"]')[0].startswith(f"{delta:+.3f}")

    # Fixed records a page at a time; the other outcomes behind their tabs.
    assert text_of(tree, '//*[@data-testid="count-fixed"]') == ["70"]
    assert text_of(tree, '//*[@data-testid="count-broken"]') == ["5"]
    assert tree.xpath('//nav[@class="tabs"]/a[@aria-current="page"]/@id') == ["tab-fixed"]
    first = [row.get("data-record") for row in tree.xpath('//tr[@data-testid="compare-row"]')]
    assert first == [f"r{i:05d}" for i in range(50)]
    tree = page(client, "/evaluations/compare/" + tree.xpath('//a[@id="compare-next"]/@href')[0])
    second = [row.get("data-record") for row in tree.xpath('//tr[@data-testid="compare-row"]')]
    assert second == [f"r{i:05d}" for i in range(50, 70)] and not tree.xpath('//a[@id="compare-next"]')
    tree = page(client, f"{url}&show=broken")
    assert [r.get("data-record") for r in tree.xpath('//tr[@data-testid="compare-row"]')] == [
        f"r{i:05d}" for i in WRONG_IN_B
    ]
    assert text_of(tree, '//tr[@data-record="r00000"]') == [] and "A fine film" not in tree.text_content()
    assert "A fine film" in page(client, url).text_content(), "compare rows name their items"


def test_confusion_matrix_shows_counts_and_row_shares(two: dict[str, Any]) -> None:
    a = two["a"]
    client = login("staff", staff=True)
    tree = page(client, f"/evaluations/{a.pk}/")
    matrix = a.metrics["confusion_matrix"]["matrix"]
    cells = tree.xpath('//td[@data-testid="cm-td"]')
    assert len(cells) == len(LABELS) ** 2
    for k, cell in enumerate(cells):
        i, j = divmod(k, len(LABELS))
        share = matrix[i][j] / sum(matrix[i])
        assert float(cell.get("data-share")) == pytest.approx(share, abs=1e-4)
        count, shown = (text_of(cell, f'.//span[@class="cm-{part}"]')[0] for part in ("count", "share"))
        assert count == str(matrix[i][j]) and shown == f"{share * 100:.1f}".rstrip("0").rstrip(".") + "%"
    png = client.get(f"/evaluations/{a.pk}/plots/confusion.png?normalize=1")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert png.content != client.get(f"/evaluations/{a.pk}/plots/confusion.png").content


def test_plot_titles_fit_their_figures() -> None:
    from evaluation.plots import confusion_figure, reliability_figure

    title = "sentiment-classifier-with-a-long-name:12 on reviews-dataset-2026-12-07:test"
    rows = [
        {"lower": i / 10, "upper": (i + 1) / 10, "count": i, "accuracy": i / 10, "confidence": i / 10}
        for i in range(10)
    ]
    for fig in (
        reliability_figure({"rows": rows, "ece": 0.05}, title=title),
        confusion_figure({"labels": LABELS, "matrix": [[3, 1], [2, 4]]}, normalize=True, title=title),
    ):
        fig.canvas.draw()
        box = fig.bbox
        for text in fig.texts:
            extent = text.get_window_extent()
            assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and extent.y1 <= box.y1, text.get_text()


def test_registry_pages_list_models_versions_and_aliases(two: dict[str, Any]) -> None:
    a, b = two["a"], two["b"]
    assert Client().get("/models/").status_code == 302, "signed-in users only, as the API"
    registry.promote("sentiment", 1, "production", reason="first")
    registry.promote("sentiment", 2, "staging")
    manager = login("boss", two["project"], "manager")
    tree = page(manager, "/models/")
    row = tree.xpath('//tr[@data-testid="model-row"]')
    assert [r.get("data-model") for r in row] == ["sentiment"]
    assert text_of(row[0], './/*[@data-testid="model-aliases"]') == ["@production → 1 @staging → 2"]
    assert "2" * 12 in row[0].text_content() and "2" * 13 not in row[0].text_content(), "latest sha, short"
    assert row[0].xpath(".//time/@datetime"), "created time as a <time> element"

    tree = page(manager, "/models/sentiment/")
    versions = tree.xpath('//tr[@data-testid="version-row"]')
    assert [v.get("data-version") for v in versions] == ["2", "1"]
    assert text_of(versions[1], "./td[1]") == ["@production"]
    assert versions[0].xpath('.//a[@data-testid="version-evaluation"]/@href') == [f"/evaluations/{b.pk}/"]
    assert versions[1].xpath('.//a[@data-testid="version-evaluation"]/@href') == [f"/evaluations/{a.pk}/"]
    assert versions[0].xpath('.//a[@href="/datasets/reviews-v1/lineage/"]')
    assert len(tree.xpath('//table[@id="alias-moves"]/tbody/tr')) == 2
    page(login("stranger"), "/models/sentiment/", 403)  # not a member of the project it was trained on
    page(manager, "/models/nothing/", 404)
    for url in ("/models/", "/models/sentiment/", f"/evaluations/{a.pk}/", f"/evaluations/compare/?a={a.pk}&b={b.pk}"):
        assert not REPR.search(manager.get(url).content.decode()), url


def test_crawls_page_shows_readable_times_and_reasons_never_reprs() -> None:
    source = services.get_or_create_source("a-source-with-a-rather-long-name-for-the-table", "http://example.test/")
    dead = services.start_crawl_job(source, "site", ["http://127.0.0.1:9/"])
    services.finish_crawl_job(
        dead.pk, failed=True, stats={"failures": "dict_keys(['DownloadConnectionRefusedError'])"}
    )  # as crawler.run recorded it once
    good = services.start_crawl_job(source, "sitemap", ["http://example.test/sitemap.xml"])
    services.finish_crawl_job(
        good.pk, failed=False,
        stats={"response_received_count": 1234, "failures": {"http_404": ["http://example.test/x"]},
               "fsml/skipped/http_404": 17},
    )  # fmt: skip
    CrawlJob.objects.filter(pk=good.pk).update(started_at=timezone.now().replace(microsecond=123456))
    html = login("ops", staff=True).get("/crawls/").content.decode()
    tree = lxml.html.fromstring(html)
    assert not REPR.search(html), REPR.search(html)
    rows = {int(r.get("id").split("-")[1]): r for r in tree.xpath('//tr[@data-testid="crawl-row"]')}
    assert text_of(rows[dead.pk], './/*[@data-testid="crawl-skipped"]') == ["DownloadConnectionRefusedError"]
    assert text_of(rows[good.pk], './/*[@data-testid="crawl-skipped"]') == ["http_404: 17"]
    assert "1,234" in rows[good.pk].text_content() and "failed" in text_of(rows[dead.pk], ".//span[@class]")
    stamp = rows[good.pk].xpath(".//time/@datetime")[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", stamp)
