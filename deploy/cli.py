"""The ``fsml`` command line: one subcommand per stage. Each parses its options and calls the library."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from deploy.console import console, progress

app = typer.Typer(
    help="fsml: crawl, annotate, version, train, export, evaluate, package and serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dataset_app = typer.Typer(help="Dataset versions (DVC snapshots of labelled projects).", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


def _django() -> None:
    from deploy.django_setup import setup

    setup(migrate=True)


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)


@app.command()
def demo(
    limit: Annotated[int, typer.Option(help="Texts on the sample site (of 38,158).")] = 3000,
    port: Annotated[int, typer.Option(help="Preferred web port.")] = 8000,
    jobs: Annotated[int, typer.Option(help="Inference jobs to submit.")] = 12,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 8,
    serve: Annotated[bool, typer.Option(help="Keep the web UI running at the end.")] = True,
) -> None:
    """Run the whole road on embedded defaults: crawl, label, snapshot, train, export, evaluate, serve."""
    from deploy.demo import run_demo

    result = run_demo(limit=limit, serve=serve, port=port, jobs=jobs, epochs=epochs)
    if not result.jobs or result.test_metrics.get("accuracy", 0) <= result.test_metrics.get("majority_rate", 1):
        _fail("the demo did not finish")


@app.command()
def crawl(
    spider: Annotated[str, typer.Argument(help="site (follow links from URL) or sitemap (URL is a sitemap).")],
    url: Annotated[str, typer.Argument(help="Start URL(s), comma-separated, or the sitemap URL.")],
    source: Annotated[str, typer.Option(help="Source name to record items under.")] = "",
    licence: Annotated[str, typer.Option(help="Licence or terms note for the source.")] = "",
    depth: Annotated[int, typer.Option(help="Link depth limit (0 = none).")] = 0,
    allow: Annotated[str, typer.Option(help="Regex of URLs to follow.")] = "",
    deny: Annotated[str, typer.Option(help="Regex of URLs not to follow.")] = "",
    extract: Annotated[str, typer.Option(help="Regex of item page URLs (default: every page).")] = "",
    images: Annotated[bool, typer.Option(help="Download images in the main content.")] = False,
    resume: Annotated[int | None, typer.Option(help="Continue an interrupted crawl job by id.")] = None,
) -> None:
    """Crawl with Scrapy into the database (resumable; one job directory per crawl job)."""
    _django()
    from urllib.parse import urlsplit

    from crawler.errors import CrawlError
    from crawler.run import crawl as run_crawl

    options = {"extract": extract, "images": "1" if images else ""}
    if spider == "site":
        options.update(depth=str(depth), allow=allow, deny=deny)
    with progress() as bar:
        task = bar.add_task("crawling: items stored", total=None)
        try:
            job = run_crawl(
                spider,
                url,
                source or (urlsplit(url).hostname or "web"),
                licence,
                options={k: v for k, v in options.items() if v},
                resume=resume,
                on_progress=lambda n: bar.update(task, completed=n),
            )
        except CrawlError as exc:
            _fail(str(exc))
    console.print(
        f"crawl job {job.pk}: {job.status}, {job.pages_crawled} pages, {job.items_stored} new, "
        f"{job.items_updated} updated, {job.items_unchanged} unchanged, {job.items_duplicate} duplicates, "
        f"{job.items_failed} invalid, {job.errors} errors; skipped: {job.stats.get('failures', {}).keys() or 'none'}"
    )


@dataset_app.command("snapshot")
def dataset_snapshot(
    project: Annotated[str, typer.Argument(help="Annotation project name.")],
    name: Annotated[str, typer.Option(help="Name of the new dataset version.")],
) -> None:
    """Freeze a project's finished labels as a DVC-tracked dataset version."""
    _django()
    from datastore.dvcrepo import DataRepoError
    from datastore.errors import SnapshotError
    from datastore.models import Project
    from datastore.snapshot import snapshot_project
    from deploy.stages import data_repo

    found = Project.objects.filter(name=project).first()
    if found is None:
        _fail(f"no project named {project!r}")
    try:
        version = snapshot_project(found, name, data_repo())
    except (SnapshotError, DataRepoError) as exc:
        _fail(str(exc))
    console.print(f"dataset version {version.name}: {version.counts}, md5 {version.dvc_md5}, git {version.git_rev}")


@dataset_app.command("list")
def dataset_list() -> None:
    """List dataset versions."""
    _django()
    from datastore.models import DatasetVersion

    for v in DatasetVersion.objects.order_by("created_at"):
        console.print(f"{v.name}\t{v.project.name}\t{v.counts}\t{v.dvc_md5}\t{v.created_at:%Y-%m-%d %H:%M}")


@app.command()
def train(
    dataset: Annotated[str, typer.Argument(help="Dataset version name.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint/ and export/ are written inside.")],
    epochs: Annotated[int, typer.Option()] = 8,
    seed: Annotated[int, typer.Option()] = 0,
    data_repo: Annotated[str, typer.Option(help="Data repository path or URL (default: FSML_HOME/data).")] = "",
) -> None:
    """Train from a dataset version through the loader, then export to ONNX with a parity check."""
    from deploy.console import train_with_progress
    from training.config import TrainConfig

    if not data_repo:
        _django()
        from deploy.stages import data_repo as default_repo

        data_repo = str(default_repo().root)
    config = TrainConfig(dataset=dataset, data_repo=data_repo, epochs=epochs, seed=seed)
    report = train_with_progress(config, out)
    console.print(
        f"checkpoint in {out / 'checkpoint'}; {out / 'export' / report.model_file} "
        f"({report.exporter}, parity max |diff| {report.max_abs_diff:.2e})"
    )


@app.command("export")
def export_cmd(run: Annotated[Path, typer.Argument(help="Run folder written by `fsml train`.")]) -> None:
    """Export a run's checkpoint to ONNX again and check parity with ONNX Runtime."""
    from datastore.loader import load
    from training.export import export
    from training.run import PARITY_SAMPLES
    from training.train import load_checkpoint

    result = load_checkpoint(run / "checkpoint")
    data = load(result.config.dataset, repo=result.config.data_repo, splits=("val",))
    report = export(result, run / "export", [r["text"] for r in data.splits["val"][:PARITY_SAMPLES]])
    console.print(
        f"exported {run / 'export' / report.model_file} ({report.exporter}, opset {report.opset}); "
        f"parity max |diff| {report.max_abs_diff:.2e}"
    )


@app.command()
def package(
    run: Annotated[Path, typer.Argument(help="Run folder with an export/ inside.")],
    name: Annotated[str, typer.Option(help="Model name in the registry.")],
) -> None:
    """Package an export as a model archive (manifest + SHA-256 per file) and register a new version."""
    _django()
    from datastore.models import DatasetVersion
    from deploy import stages
    from training.export import read_export_info

    info = read_export_info(run / "export")
    dataset = DatasetVersion.objects.filter(name=info["training_config"]["dataset"]).first()
    model = stages.package_and_register(run / "export", name, dataset, {})
    console.print(f"registered {model} -> {model.archive_path} (sha256 {model.archive_sha256[:16]}…)")


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help="MODEL or MODEL:VERSION")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
) -> None:
    """Evaluate a registered model version on its dataset version's split."""
    _django()
    from deploy import stages
    from serving.services import JobError, resolve_model

    try:
        version = resolve_model(model)
    except JobError as exc:
        _fail(exc.reason)
    report = stages.evaluate_model(version, split)
    metrics = report["metrics"]
    console.print(
        f"{version} on {report['dataset']}:{split}: accuracy {metrics['accuracy']:.4f}, "
        f"macro F1 {metrics['macro_f1']:.4f}, n={metrics['n']}"
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    queues: Annotated[str, typer.Option(help="Queues to consume.")] = "inference",
) -> None:
    """Run a Celery worker (the same command docker compose runs)."""
    from deploy.processes import worker_command

    cmd = worker_command(concurrency, queues)
    os.execv(cmd[0], cmd)


@app.command()
def web(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 2,
) -> None:
    """Migrate the database and serve the web app with gunicorn."""
    _django()
    from django.conf import settings

    if settings.DEBUG and host not in ("127.0.0.1", "localhost", "::1"):
        _fail(f"refusing to serve on {host} with DEBUG on; set DJANGO_SETTINGS_MODULE=config.settings.production")
    from deploy.processes import web_command

    cmd = web_command(host, port, workers)
    os.execv(cmd[0], cmd)


@app.command()
def submit(
    model: Annotated[str, typer.Argument(help="MODEL or MODEL:VERSION")],
    texts: Annotated[list[str], typer.Argument(help="Texts to classify, one job each.")],
    url: Annotated[str, typer.Option(envvar="FSML_URL")] = "http://127.0.0.1:8000/",
    token: Annotated[str, typer.Option(envvar="FSML_TOKEN", help="API token of the calling service.")] = "",
    timeout: Annotated[float, typer.Option()] = 60,
) -> None:
    """Submit inference jobs through the REST API and wait for their results."""
    from deploy.client import ApiClient, ApiError

    if not token:
        _fail("an API token is needed (--token or FSML_TOKEN)")
    client = ApiClient(url, token)
    try:
        ids = [client.submit_job(model, {"text": t})["id"] for t in texts]
        for job in client.wait_jobs(ids, timeout=timeout):
            console.print(json.dumps({k: job[k] for k in ("id", "status", "result", "error", "worker")}))
    except (ApiError, TimeoutError) as exc:
        _fail(str(exc))


def _expected(exc: BaseException) -> bool:
    """Domain errors end with a one-line message; anything else is a bug and keeps its traceback."""
    from crawler.errors import CrawlError
    from datastore.archive import ArchiveError
    from datastore.dvcrepo import DataRepoError
    from datastore.errors import SnapshotError
    from datastore.loader import DatasetNotFound
    from training.export import ParityError

    return isinstance(
        exc,
        ArchiveError
        | CrawlError
        | DataRepoError
        | DatasetNotFound
        | ParityError
        | SnapshotError
        | FileExistsError
        | FileNotFoundError,
    )


def main() -> None:
    """Console-script entry point: domain errors end with a one-line message and exit code 2."""
    try:
        sys.exit(app())
    except Exception as exc:
        if not _expected(exc):
            raise
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
