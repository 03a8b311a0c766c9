"""Server-side time of the evaluation pages over a stored evaluation of 10,000+ predictions.

    python -m bench.evaluation [--items 13000] [--rounds 20] [--keep]

Real from end to end: ``--items`` gold-labelled corpus texts in a project (MariaDB), a DVC snapshot, a bag of
embeddings trained for one epoch and another for three, exported and registered, then ``run_evaluation`` of
each on the version's train split (80% of the items: about 10,400 predictions for 13,000). Then each page is
requested through Django's test client in this process (no network, no browser: the server's whole work,
from URL routing to the rendered HTML, with DEBUG off) ``--rounds`` times after one warm-up; the table gives
p50/p95/max and the number of SQL queries of one request. The target is under a second server-side for the
case list with filters.

Database: DATABASE_URL, default mysql://root@127.0.0.1:3306/fsml_bench_eval (created if missing). What the
benchmark writes is deleted at the end (``--keep`` leaves it, to browse it with ``fsml web``).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "bench-eval"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def build(items: int, folder: Path) -> list[Any]:
    """Project, snapshot, two model versions (1 and 3 epochs) and their stored evaluations on the train split."""
    from bench.loader import labelled_project
    from datastore import services
    from datastore.dvcrepo import DataRepo
    from datastore.loader import load
    from datastore.snapshot import snapshot_project
    from evaluation.records import run_evaluation
    from training.config import TrainConfig
    from training.export import export
    from training.package import build_archive
    from training.train import train

    began = time.perf_counter()
    project = labelled_project(NAME, items, seed=1)  # a shuffled sample: the corpus file is sorted by label
    repo = DataRepo(folder / "data", str(folder / "remote"))
    dataset = snapshot_project(project, f"{NAME}-v1", repo)
    data = load(dataset.name, repo=str(repo.root))
    models = []
    for version, epochs in ((1, 1), (2, 3)):
        result = train(TrainConfig(dataset=dataset.name, epochs=epochs, min_freq=2), data)
        out = folder / f"model-{version}"
        export(result, out / "export", data, int8=False)
        sha, manifest = build_archive(out / "export", out / "model.tar.gz", NAME, version, dataset.name, {})
        models.append(
            services.register_model_version(
                NAME, "text_classification", str(out / "model.tar.gz"), sha, manifest, dataset, version=version
            )
        )
    print(f"set-up (import, snapshot, two models trained and exported): {time.perf_counter() - began:.0f} s")
    evaluations = []
    for model in models:
        began = time.perf_counter()
        evaluations.append(run_evaluation(model, dataset, "train", repo))
        print(
            f"run_evaluation {model}: {evaluations[-1].n:,} predictions scored and stored in "
            f"{time.perf_counter() - began:.1f} s (predicting and scoring {evaluations[-1].seconds:.1f} s); "
            f"accuracy {evaluations[-1].score:.4f}"
        )
    return evaluations


def clean() -> None:
    from bench.loader import delete_project
    from datastore.models import ModelVersion

    ModelVersion.objects.filter(name=NAME).delete()  # cascades to evaluations and predictions
    delete_project(NAME)


def pages(evaluation: Any, other: Any) -> dict[str, str]:
    """The requests to time: the list unfiltered, deep in the pages, and under each filter."""
    wrong = evaluation.predictions.filter(correct=False).values_list("true_label", "predicted_label").first()
    true, predicted = wrong or (evaluation.labels[0], evaluation.labels[1])
    case = evaluation.predictions.filter(correct=False).values_list("pk", flat=True).first()
    base = f"/evaluations/{evaluation.pk}/"
    return {
        "leaderboard": "/evaluations/",
        "cases, page 1": base,
        "cases, page 150": f"{base}?page=150",
        "confusion cell (true, predicted)": f"{base}?true={true}&predicted={predicted}",
        "wrong, confidence >= 0.6, most confident first": f"{base}?outcome=wrong&min_confidence=0.6&order=-confidence",
        "confidence 0.4 to 0.5": f"{base}?min_confidence=0.4&max_confidence=0.5",
        "search 'love'": f"{base}?q=love",
        "search + true label + wrong, page 2": f"{base}?q=the&true={true}&outcome=wrong&page=2",
        "one case": f"{base}cases/{case}/",
        "export.csv (every prediction, streamed)": f"{base}export.csv",
        "compare two versions (fixed / broken)": f"/evaluations/compare/?a={evaluation.pk}&b={other.pk}",
    }


def time_pages(client: Any, urls: dict[str, str], rounds: int) -> list[tuple[str, int, float, float, float, int]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = []
    for label, url in urls.items():
        response = client.get(url)  # warm-up, and the status and query count
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
        count = len(queries)  # now: the list is read from the connection's log, which the next request clears
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            response = client.get(url)
            if response.streaming:
                b"".join(response.streaming_content)
            times.append(1000 * (time.perf_counter() - start))
        rows.append((label, response.status_code, statistics.median(times), percentile(times, 95), max(times),
                     count))  # fmt: skip
        assert body, f"{url} returned an empty body"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=13_000, help="labelled texts (80%% land in train)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="leave the project, model and evaluation in place")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml_bench_eval")
    os.environ["DEBUG"] = "0"  # as served: no query log, no template debug
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))
    from bench.crawl import setup_database

    setup_database()
    from django.contrib.auth import get_user_model
    from django.test import Client

    clean()
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        try:
            evaluation, other = build(args.items, Path(tmp))
            admin = get_user_model().objects.update_or_create(
                username=f"{NAME}-admin", defaults={"is_staff": True, "is_superuser": True}
            )[0]
            client = Client(SERVER_NAME="localhost")
            client.force_login(admin)
            rows = time_pages(client, pages(evaluation, other), args.rounds)
            print(f"\n{evaluation.n:,} predictions, {args.rounds} rounds per page, Django test client, DEBUG off\n")
            print("| page | status | p50 ms | p95 ms | max ms | SQL queries |\n| --- | --- | --- | --- | --- | --- |")
            for label, status, p50, p95, worst, queries in rows:
                print(f"| {label} | {status} | {p50:.1f} | {p95:.1f} | {worst:.1f} | {queries} |")
        finally:
            if not args.keep:
                clean()


if __name__ == "__main__":
    main()
