"""Provenance carried from a snapshot into a model archive, and the lineage of a job served through the real job
API (gunicorn, a Celery worker, MariaDB, Redis, DVC), shown by the API, the page in Chromium and ``fsml lineage``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from annotation.services import create_project, next_task, submit
from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.lineage import job_lineage
from datastore.loader import load
from datastore.models import CrawlJob, InferenceJob, Item
from datastore.snapshot import snapshot_project
from deploy.demo.corpora import sentiment_corpus
from tests.browser_support import login, screenshot_on_failure, snapshot, user
from tests.helpers import fsml
from tests.processes import wait_done

LICENCE = "Sample reviews, CC BY-SA 4.0"
FETCHED = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
N = 240


@pytest.fixture
def served(live_env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """A crawl of N labelled reviews (one source, one crawl job), annotated, snapshotted with DVC, trained on,
    packaged and registered as ``reviews:1`` with its dataset version."""
    # local: torch and the training stack load only for this fixture
    from training.config import TrainConfig
    from training.export import export
    from training.package import build_archive
    from training.train import train

    source = services.get_or_create_source("reviews-site", "http://reviews.test/", LICENCE)
    crawl = CrawlJob.objects.create(source=source, spider="site", status=CrawlJob.Status.FINISHED, finished_at=FETCHED)
    rows = {r.text: r.label for r in sentiment_corpus(limit=N, seed=3)}
    texts = sorted(rows)
    services.store_items(
        crawl,
        [
            {"url": f"http://reviews.test/r/{i}", "canonical_url": f"http://reviews.test/r/{i}", "text": t,
             "fetched_at": FETCHED, "title": f"Review {i}"}
            for i, t in enumerate(texts)
        ],
    )  # fmt: skip
    annotator = get_user_model().objects.create(username="ann")
    labels = sorted(set(rows.values()))
    project = create_project("reviews", "text_classification", labels, Item.objects.all(), members=[annotator])
    while (held := next_task(project, annotator)) is not None:
        submit(held.task_id, annotator, rows[held.task.item.text])
    repo = DataRepo(tmp_path / "data", str(tmp_path / "remote"))
    version = snapshot_project(project, "reviews-v1", repo)
    data = load("reviews-v1", repo=str(repo.root))
    result = train(TrainConfig(dataset="reviews-v1", data_repo=str(repo.root), epochs=2, min_freq=1), data)
    export(result, tmp_path / "export", data, int8=False)
    archive = tmp_path / "reviews-1.tar.gz"
    sha, manifest = build_archive(tmp_path / "export", archive, "reviews", 1, "reviews-v1", {})
    model = services.register_model_version("reviews", "text_classification", str(archive), sha, manifest, version)
    return {"repo": repo, "version": version, "model": model, "texts": texts, "crawl": crawl, "data": data}


def test_provenance_goes_from_the_snapshot_into_the_model_archive(served) -> None:
    provenance = served["data"].manifest["provenance"]
    [source] = provenance["sources"]
    assert (source["name"], source["base_url"], source["licence_note"]) == (
        "reviews-site",
        "http://reviews.test/",
        LICENCE,
    )
    assert source["records"] == sum(served["version"].counts.values())
    assert source["splits"] == served["version"].counts
    [job] = source["crawl_jobs"]
    assert job["id"] == served["crawl"].pk and job["spider"] == "site" and job["records"] == source["records"]
    assert job["finished_at"] == FETCHED.isoformat()
    [guidelines] = provenance["guideline_versions"]
    assert guidelines["number"] == 1 and guidelines["annotations"] == source["records"]
    copied = served["model"].manifest["data_provenance"]
    assert copied == {
        "dataset_version": "reviews-v1",
        "recorded": True,
        "sources": provenance["sources"],
        "guideline_versions": provenance["guideline_versions"],
    }


def test_the_frozen_label_is_read_from_the_version_files(served) -> None:
    text = served["texts"][5]
    job = InferenceJob.objects.create(
        model_version=served["model"], model_ref="reviews", submitted_by=get_user_model().objects.create(username="x"),
        inputs={"text": text}, status=InferenceJob.Status.SUCCEEDED,
    )  # fmt: skip
    [record] = job_lineage(job, repo=str(served["repo"].root))["records"]
    assert record["label"]["from"] == "dataset files"
    assert record["label"]["value"] == record["annotations"][0]["value"]
    assert record["label"]["split"] in ("train", "val", "test")


def test_a_served_job_traces_back_through_api_page_and_cli(served, celery_worker, server, browser, request) -> None:
    billing = user("billing")
    token = Token.objects.create(user=billing).key
    headers = {"Authorization": f"Token {token}"}
    crawled, own = served["texts"][7], "a sentence of my own that nobody crawled"
    ids = []
    for text in (crawled, own):
        res = requests.post(
            f"{server}/api/jobs/", json={"model": "reviews", "inputs": {"text": text}}, headers=headers, timeout=10
        )
        assert res.status_code == 202, res.text
        ids.append(res.json()["id"])
    wait_done(ids)
    stored_id, own_id = ids

    chain = requests.get(f"{server}/api/jobs/{stored_id}/lineage/", headers=headers, timeout=30).json()
    assert chain["input"]["stored"] is True
    assert chain["job"]["worker"].startswith("test") and chain["job"]["status"] == "succeeded"
    item = chain["records"][0]["item"]
    assert item["url"] == f"http://reviews.test/r/{served['texts'].index(crawled)}"
    assert item["fetched_at"] == FETCHED.isoformat() and item["source"]["licence_note"] == LICENCE
    assert chain["model"]["archive_sha256"] == served["model"].archive_sha256
    mine = requests.get(f"{server}/api/jobs/{own_id}/lineage/", headers=headers, timeout=30).json()
    assert mine["input"]["stored"] is False and mine["trained_on"]["sources"][0]["licence_note"] == LICENCE
    other = Token.objects.create(user=user("shipping")).key
    res = requests.get(
        f"{server}/api/jobs/{stored_id}/lineage/", headers={"Authorization": f"Token {other}"}, timeout=10
    )
    assert res.status_code == 404

    page = login(browser, server, "billing", f"/jobs/{stored_id}/lineage/")
    with screenshot_on_failure(page, request):
        link = page.get_by_test_id("lineage-url")
        assert link.get_attribute("href") == item["url"]
        fetched = page.get_by_test_id("lineage-fetched").locator("time")
        assert fetched.get_attribute("datetime") == FETCHED.replace(microsecond=0).isoformat()
        assert page.get_by_test_id("lineage-licence").inner_text() == LICENCE
        snapshot(page, "lineage-job-stored")
        page.goto(f"{server}/jobs/{own_id}/lineage/")
        assert "not a stored item" in page.get_by_test_id("lineage-stored").inner_text()
        assert LICENCE in page.get_by_test_id("lineage-sources").inner_text()
        snapshot(page, "lineage-job-own-text")

    out = fsml("lineage", stored_id)
    assert out.returncode == 0, out.stderr
    assert item["url"] in out.stdout and LICENCE in out.stdout and "ann" in out.stdout
    as_json = fsml("lineage", own_id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["input"]["stored"] is False
    missing = fsml("lineage", str(uuid.uuid4()))
    assert missing.returncode == 2 and "no job" in missing.stdout
    bad = fsml("lineage", "not-a-uuid")
    assert bad.returncode == 2 and "not a job id" in bad.stdout
    dataset = fsml("lineage", "--dataset", "reviews-v1")
    assert dataset.returncode == 0 and LICENCE in dataset.stdout and "reviews:1" in dataset.stdout


def test_an_evaluation_case_and_a_dataset_version_show_their_lineage(served, server, browser, request) -> None:
    from evaluation.records import run_evaluation  # local: the evaluation stack loads the model runtime

    evaluation = run_evaluation(served["model"], served["version"], "test", served["repo"])
    case = evaluation.predictions.select_related("item").order_by("pk").first()
    assert case is not None and case.item is not None
    boss = user("boss")
    boss.is_staff = True
    boss.save()
    page = login(browser, server, "boss", f"/evaluations/{evaluation.pk}/cases/{case.pk}/")
    with screenshot_on_failure(page, request):
        page.get_by_test_id("case-lineage-link").click()
        page.wait_for_url(f"{server}/evaluations/{evaluation.pk}/cases/{case.pk}/lineage/")
        assert page.get_by_test_id("lineage-url").get_attribute("href") == case.item.url
        assert page.get_by_test_id("lineage-frozen-label").inner_text() == case.true_label
        assert "ann" in page.get_by_test_id("lineage-annotations").inner_text()
        snapshot(page, "lineage-case")
        page.goto(f"{server}/datasets/reviews-v1/lineage/")
        assert LICENCE in page.get_by_test_id("lineage-sources").inner_text()
        assert "reviews:1" in page.get_by_test_id("dataset-models").inner_text()
        snapshot(page, "lineage-dataset")
    out = fsml("lineage", "--prediction", str(case.pk))
    assert out.returncode == 0 and case.item.url in out.stdout, out.stdout + out.stderr
    missing = fsml("lineage", "--dataset", "no-such-version")
    assert missing.returncode == 2 and "no dataset version named" in missing.stdout
