"""Lineage from a served job, an evaluation case and a dataset version back to the crawled page, on the real
MariaDB. The jobs, model and dataset versions are models of record built directly (no worker, no DVC): the label a
version froze is read from an evaluation's predictions here; tests/system/test_lineage.py reads it from DVC."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.services import create_project, next_task, submit
from datastore import services
from datastore.lineage import dataset_lineage, job_lineage, prediction_lineage
from datastore.models import CrawlJob, DatasetVersion, Evaluation, InferenceJob, Item, ModelVersion, Prediction

pytestmark = pytest.mark.django_db

LABELS = ["negative", "positive"]
LICENCE = "CC BY 4.0, attribution to News Test"
FETCHED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def text_of(i: int) -> str:
    return f"review number {i}: {'great' if i % 2 else 'awful'} product"


@pytest.fixture
def world() -> dict[str, Any]:
    """A crawl of 6 pages (one not robots-checked), a project whose tasks are all labelled by an annotator under
    guideline version 1, a dataset version of it, a model version trained on it and an evaluation of record 0."""
    source = services.get_or_create_source("news", "http://news.test/", LICENCE)
    crawl = CrawlJob.objects.create(source=source, spider="site", status=CrawlJob.Status.FINISHED, finished_at=FETCHED)
    services.store_items(
        crawl,
        [
            {
                "url": f"http://news.test/review/{i}",
                "canonical_url": f"http://news.test/review/{i}",
                "title": f"Review {i}",
                "text": text_of(i),
                "fetched_at": FETCHED,
                "robots": "not_checked" if i == 3 else "allowed",
            }
            for i in range(6)
        ],
    )
    users = get_user_model().objects
    annotator = users.create(username="ann")
    project = create_project("reviews", "text_classification", LABELS, Item.objects.order_by("id"), members=[annotator])
    while (held := next_task(project, annotator)) is not None:
        submit(held.task_id, annotator, LABELS[int("great" in held.task.item.text)])
    version = services.record_dataset_version(
        name="reviews-v1", project=project, dvc_md5="d" * 32, git_rev="a" * 40, path="datasets/reviews-v1",
        counts={"train": 4, "val": 1, "test": 1}, label_distribution={},
    )  # fmt: skip
    manifest = {
        "code_revision": "c0ffee",
        "training_config": {"dataset": "reviews-v1", "epochs": 3, "model": {"name": "bag"}},
        "metrics": {"test": {"accuracy": 0.9}},
        "dataset_version": "reviews-v1",
        "data_provenance": {
            "dataset_version": "reviews-v1",
            "recorded": True,
            "sources": [{"name": "news", "base_url": "http://news.test/", "licence_note": LICENCE, "records": 6,
                         "splits": {"train": 4, "val": 1, "test": 1}, "crawl_jobs": []}],
            "guideline_versions": [{"number": 1, "annotations": 6}],
        },
    }  # fmt: skip
    model = services.register_model_version("reviews", "text_classification", "/m.tar.gz", "f" * 64, manifest, version)
    item = Item.objects.get(url="http://news.test/review/3")
    evaluation = Evaluation.objects.create(
        model_version=model, dataset_version=version, split="test", task_type="text_classification",
        labels=LABELS, n=1, score=1.0, macro_f1=1.0,
    )  # fmt: skip
    case = Prediction.objects.create(
        evaluation=evaluation, record_id=item.url_hash, item=item, text=item.text, true_label="positive",
        predicted_label="positive", true_value="positive", predicted_value="positive", confidence=0.8, correct=True,
    )  # fmt: skip
    client_user = users.create(username="billing")
    return {"model": model, "version": version, "user": client_user, "item": item, "case": case, "crawl": crawl}


def job_for(world: dict[str, Any], text: str) -> InferenceJob:
    return InferenceJob.objects.create(
        model_version=world["model"], model_ref="reviews@production", submitted_by=world["user"],
        inputs={"text": text}, status=InferenceJob.Status.SUCCEEDED, result={"label": "positive"},
        worker="test-1@host", worker_pid=42, finished_at=FETCHED,
    )  # fmt: skip


def test_a_job_on_a_crawled_annotated_item_traces_back_to_the_page(world) -> None:
    chain = job_lineage(job_for(world, text_of(3)))
    assert chain["input"]["stored"] is True and chain["trained_on"] is None
    assert chain["job"]["worker"] == "test-1@host" and chain["job"]["submitted_by"] == "billing"
    model = chain["model"]
    assert (model["ref"], model["archive_sha256"], model["code_revision"]) == ("reviews:1", "f" * 64, "c0ffee")
    assert model["training_config"]["epochs"] == 3 and model["metrics"]["test"]["accuracy"] == 0.9
    assert chain["dataset"]["name"] == "reviews-v1" and chain["dataset"]["tag"] == "dataset/reviews-v1"
    assert chain["dataset"]["dvc_md5"] == "d" * 32
    [record] = chain["records"]
    assert record["label"] == {"value": "positive", "split": "test", "from": "evaluation"}
    [annotation] = record["annotations"]
    assert annotation["annotator"] == "ann" and annotation["value"] == "positive"
    assert annotation["guideline_version"] == 1
    item = record["item"]
    assert item["url"] == "http://news.test/review/3" and item["robots"] == "not_checked"
    assert item["fetched_at"] == FETCHED.isoformat()
    assert item["source"] == {"name": "news", "base_url": "http://news.test/", "licence_note": LICENCE}
    assert item["crawl_job"]["id"] == world["crawl"].pk and item["crawl_job"]["spider"] == "site"


def test_a_job_with_its_own_text_says_so_and_gives_the_training_sources(world) -> None:
    chain = job_lineage(job_for(world, "a sentence nobody crawled"))
    assert chain["input"]["stored"] is False and chain["records"] == []
    assert chain["trained_on"]["from"] == "model manifest"
    [source] = chain["trained_on"]["sources"]
    assert source["name"] == "news" and source["licence_note"] == LICENCE and source["records"] == 6


def test_without_a_frozen_label_the_chain_says_it_was_not_read(world) -> None:
    """Record 2 is in no evaluation and no data repository is given: the label is not guessed from today's task."""
    chain = job_lineage(job_for(world, text_of(2)))
    [record] = chain["records"]
    assert record["label"] is None and record["item"]["url"] == "http://news.test/review/2"
    assert chain["dataset"]["files"] == "not read: no data repository given"


def test_an_evaluation_case_and_a_dataset_version_trace_back(world) -> None:
    chain = prediction_lineage(world["case"])
    assert chain["case"]["record_id"] == world["item"].url_hash
    assert chain["records"][0]["item"]["url"] == "http://news.test/review/3"
    record = dataset_lineage(world["version"])  # no data repository: the copy in the model's manifest
    assert record["models"] == [{"ref": "reviews:1", "archive_sha256": "f" * 64}]
    assert record["provenance"]["from"] == "manifest of reviews:1 (a copy of the version's)"
    assert record["provenance"]["sources"][0]["licence_note"] == LICENCE

    later = services.record_dataset_version(
        name="reviews-v2", project=world["version"].project, dvc_md5="e" * 32, git_rev="b" * 40,
        path="datasets/reviews-v2", counts={}, label_distribution={},
    )  # fmt: skip
    record = dataset_lineage(later, repo="/nonexistent/data")  # no model, no repository: the project as it is now
    assert record["models"] == [] and record["provenance"]["from"].startswith("project now")
    assert "/nonexistent/data" in record["provenance"]["from"]
    [source] = record["provenance"]["sources"]
    assert source["licence_note"] == LICENCE and source["records"] == 6
    assert source["crawl_jobs"] == [
        {
            "id": world["crawl"].pk, "spider": "site", "status": "finished",
            "started_at": world["crawl"].started_at.isoformat(), "finished_at": FETCHED.isoformat(), "records": 6,
        }
    ]  # fmt: skip
    assert record["provenance"]["guideline_versions"] == [{"number": 1, "annotations": 6}]


def api_client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_the_api_shows_a_job_only_to_its_submitter_and_staff(world) -> None:
    job = job_for(world, text_of(3))
    url = f"/api/jobs/{job.pk}/lineage/"
    res = api_client(world["user"]).get(url)
    assert res.status_code == 200, res.content
    assert res.json()["records"][0]["item"]["url"] == "http://news.test/review/3"
    users = get_user_model().objects
    other = api_client(users.create(username="shipping")).get(url)
    assert other.status_code == 404 and other.json() == {"detail": "no such job"}
    assert api_client(users.create(username="root", is_staff=True)).get(url).status_code == 200
    unknown = api_client(world["user"]).get(f"/api/jobs/{uuid.uuid4()}/lineage/")
    assert unknown.status_code == 404
    assert APIClient().get(url).status_code in (401, 403)


def test_the_pages_show_the_chain_to_those_who_may_see_it(world) -> None:
    job = job_for(world, text_of(3))
    page = f"/jobs/{job.pk}/lineage/"
    client = Client()
    assert client.get(page).status_code == 302, "login required"
    client.force_login(world["user"])
    body = client.get(page).content.decode()
    assert 'href="http://news.test/review/3"' in body and LICENCE in body and "not_checked" in body
    other = Client()
    other.force_login(get_user_model().objects.create(username="shipping"))
    assert other.get(page).status_code == 404
    assert other.get(f"/jobs/{uuid.uuid4()}/lineage/").status_code == 404

    manager = Client()
    manager.force_login(get_user_model().objects.create(username="boss", is_staff=True))
    case = world["case"]
    case_page = manager.get(f"/evaluations/{case.evaluation_id}/cases/{case.pk}/").content.decode()
    assert f"/evaluations/{case.evaluation_id}/cases/{case.pk}/lineage/" in case_page
    lineage = manager.get(f"/evaluations/{case.evaluation_id}/cases/{case.pk}/lineage/").content.decode()
    assert "http://news.test/review/3" in lineage
    assert 'href="/datasets/reviews-v1/lineage/"' in manager.get("/evaluations/").content.decode()
    dataset = manager.get("/datasets/reviews-v1/lineage/")
    assert dataset.status_code == 200 and LICENCE in dataset.content.decode()
    assert manager.get("/datasets/nope/lineage/").status_code == 404
    assert other.get("/datasets/reviews-v1/lineage/").status_code == 404, "not a member of its project"


def test_the_registry_api_says_what_a_model_was_trained_on(world) -> None:
    assert api_client(world["user"]).get("/api/models/reviews/").status_code == 403, "a service reads its jobs' lineage"
    staff = get_user_model().objects.create(username="ops", is_staff=True)
    res = api_client(staff).get("/api/models/reviews/")
    assert res.status_code == 200, res.content
    assert res.json()["versions"][0]["trained_on"]["sources"][0]["licence_note"] == LICENCE
    assert DatasetVersion.objects.count() == 1 and ModelVersion.objects.count() == 1
