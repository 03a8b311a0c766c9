"""The ``fsml`` command line: one subcommand per stage. Each parses its options and calls the library."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from crawler.errors import CrawlError
from deploy.cli_crawls import crawl, crawls
from deploy.cli_datasets import dataset_app, pipeline_app
from deploy.cli_lineage import lineage
from deploy.cli_models import model_app
from deploy.cli_projects import project_app, user_app
from deploy.cli_support import MODEL_REF_HELP, write_json
from deploy.cli_support import fail as _fail
from deploy.cli_support import repo_or_default as _repo
from deploy.cli_support import start_django as _django
from deploy.console import console, print_json_line, progress
from deploy.logs import setup_logging

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # serving only to this machine needs no login or DEBUG off

app = typer.Typer(
    no_args_is_help=True,  # the help text is the docstring of ``options`` below
    pretty_exceptions_enable=False,
)
app.add_typer(dataset_app, name="dataset")
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(model_app, name="model")
app.add_typer(project_app, name="project")
app.add_typer(user_app, name="user")
app.command("lineage")(lineage)
app.command("crawl")(crawl)
app.command("crawls")(crawls)


@app.callback()
def options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show every library's log records and warnings too (they always go to the log file).",
        ),
    ] = False,
) -> None:
    """fsml: crawl, annotate, version, train, export, evaluate, package and serve.

    Results go to stdout, progress bars and fsml's warnings to stderr. A model is named NAME (its latest
    version), NAME:VERSION or NAME@ALIAS.
    """
    setup_logging(verbose)


@app.command()
def demo(
    limit: Annotated[int, typer.Option(help="Texts on the sample site (of 38,158).")] = 3000,
    port: Annotated[int, typer.Option(help="Preferred web port.")] = 8000,
    jobs: Annotated[int, typer.Option(help="Inference jobs to submit.")] = 12,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 8,
    serve: Annotated[bool, typer.Option(help="Keep the web UI running at the end.")] = True,
) -> None:
    """Run the whole road on embedded defaults: crawl, label, snapshot, train, export, evaluate, serve."""
    # local: the demo loads Django, torch and DVC; importing them here keeps `fsml --help` fast
    from deploy.demo.road import run_demo

    result = run_demo(limit=limit, serve=serve, port=port, jobs=jobs, epochs=epochs)
    if not result.jobs or result.test_metrics.get("accuracy", 0) <= result.test_metrics.get("majority_rate", 1):
        _fail("the demo did not finish")


@app.command()
def train(
    config: Annotated[
        str, typer.Argument(help="A YAML training config, or a dataset version name (with the defaults).")
    ],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint/, export/, metrics and plots go inside.")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value override of the config; repeat for more.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Shortcut for --set epochs=N.")] = None,
    seed: Annotated[int | None, typer.Option(help="Shortcut for --set seed=N.")] = None,
    data_repo: Annotated[str, typer.Option(help="Data repository path or URL (default: FSML_HOME/data).")] = "",
    resume: Annotated[bool, typer.Option(help="Go on from the run folder's last finished epoch.")] = False,
    export: Annotated[bool, typer.Option(help="Export to ONNX (and INT8) into OUT/export after training.")] = True,
    metrics: Annotated[Path | None, typer.Option(help="Write the last epoch's metrics here (JSON).")] = None,
) -> None:
    """Train from a dataset version through the loader, then export to ONNX with parity checks.

    CONFIG is a YAML file (see configs/) or a dataset version name; --set overrides any key. The same
    run works as `python -m training CONFIG --out RUN` and under `torchrun`."""
    # local: training imports torch (over a second); importing them here keeps `fsml --help` fast
    from datastore.loader import DatasetError
    from deploy.console import train_with_progress
    from training.config import ConfigError, TrainConfig, load_config
    from training.train import TrainingError

    is_file = config.endswith((".yaml", ".yml")) or Path(config).is_file()
    try:
        cfg = load_config(
            Path(config) if is_file else None,
            set_ or [],
            dataset=None if is_file else config,
            epochs=epochs,
            seed=seed,
            data_repo=data_repo or None,
        )
        if cfg.data_repo == TrainConfig.data_repo:  # neither the file nor --data-repo named one: the configured repo
            cfg.data_repo = _repo("")
        result, report = train_with_progress(cfg, out, export=export, resume=resume)
    except (ConfigError, TrainingError, DatasetError) as exc:
        _fail(str(exc))
    if metrics is not None:
        write_json(metrics, {"epochs": len(result.history), **result.history[-1]})
    last = result.history[-1]
    console.print(f"checkpoint in {out / 'checkpoint'}; val score {last['val_score']:.4f} after {last['epoch']} epochs")
    if report is not None:
        int8 = f"; INT8 score {report.score_int8:.4f} vs {report.score_fp32:.4f}" if report.int8_file else ""
        console.print(
            f"{out / 'export' / report.model_file} ({report.exporter}, parity max |diff| {report.max_abs_diff:.2e}"
            f"{int8})"
        )


@app.command("export")
def export_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder written by `fsml train`.")],
    out: Annotated[Path | None, typer.Option(help="Export folder (default: RUN/export).")] = None,
) -> None:
    """Export a run's checkpoint to ONNX (and INT8) and check parity with ONNX Runtime."""
    # local: training imports torch (over a second); importing them here keeps `fsml --help` fast
    from datastore.loader import DatasetError, load
    from training.checkpoint import CHECKPOINT_FILE, load_checkpoint
    from training.export import ExportError, export

    out = out or run / "export"
    if not (run / "checkpoint" / CHECKPOINT_FILE).is_file():
        _fail(f"{run} holds no checkpoint (checkpoint/{CHECKPOINT_FILE} is missing): run fsml train first")
    result = load_checkpoint(run / "checkpoint")
    images = result.config.task == "image_classification"
    try:
        data = load(result.config.dataset, repo=result.config.data_repo, splits=("val",), images=images)
        with progress() as bar:
            bar.add_task(f"exporting to ONNX, checking parity on {result.config.dataset}:val", total=None)
            report = export(result, out, data)
    except DatasetError as exc:
        _fail(str(exc))
    except ExportError as exc:
        _fail(exc.reason)
    console.print(
        f"exported {out / report.model_file} ({report.exporter}, opset {report.opset}); "
        f"parity max |diff| {report.max_abs_diff:.2e}"
    )


@app.command()
def package(
    run: Annotated[Path, typer.Argument(help="Run folder with an export/ inside.")],
    name: Annotated[str, typer.Option(help="Model name in the registry.")],
    evaluate: Annotated[
        bool, typer.Option(help="Score the export on its dataset version's test split for the manifest's metrics.")
    ] = True,
) -> None:
    """Package an export as a model archive (model files, processing code, vocabulary, and a manifest with a
    SHA-256 per file), put it in the model store and register it as the next version of NAME.

    The manifest's metrics are the best validation epoch's and, when the dataset version the model was trained
    on is registered here, the test split's (--no-evaluate skips that).
    """
    _django()
    # local: the models need Django, set up just above; training and evaluation import torch
    from datastore.loader import DatasetError
    from datastore.models import DatasetVersion
    from deploy import stages
    from evaluation.evaluate import EvaluationError
    from training.export import EXPORT_INFO, read_export_info

    export_dir = run / "export"
    if not (export_dir / EXPORT_INFO).is_file():
        _fail(f"{export_dir} holds no export ({EXPORT_INFO} is missing): run fsml export first")
    info = read_export_info(export_dir)
    dataset = DatasetVersion.objects.filter(name=info["training_config"]["dataset"]).first()
    metrics: dict[str, Any] = {}
    scored = [row for row in info.get("history", []) if "val_score" in row]
    if scored:
        best = max(scored, key=lambda row: row["val_score"])
        metrics["val"] = {key[4:]: value for key, value in best.items() if key.startswith("val_")}
        metrics["val"]["epoch"] = best["epoch"]
    with progress() as bar:
        if evaluate and dataset is not None:
            step = bar.add_task(f"scoring the export on {dataset.name}:test", total=None)
            try:
                metrics["test"] = stages.evaluate_export(export_dir, dataset.name)["metrics"]
            except (DatasetError, EvaluationError) as exc:
                _fail(f"cannot score the export on {dataset.name}:test ({exc}); --no-evaluate packages it without")
            bar.update(step, total=1, completed=1)
        bar.add_task(f"packaging {name} into the model store", total=None)
        model = stages.package_and_register(export_dir, name, dataset, metrics)
    console.print(f"registered {model} -> {model.archive_path} (sha256 {model.archive_sha256[:16]}…)")
    if "test" in metrics and dataset is not None:
        console.print(f"test accuracy {metrics['test'].get('accuracy', float('nan')):.4f} on {dataset.name}")


@app.command()
def evaluate(
    model: Annotated[str, typer.Argument(help=f"{MODEL_REF_HELP} Or an export folder (no database needed).")],
    target: Annotated[
        str, typer.Argument(help="DATASET_VERSION[:split] (default: the model's own version, split test)")
    ] = "",
    split: Annotated[str, typer.Option(help="train, val or test, when TARGET names no split")] = "test",
    dataset: Annotated[str, typer.Option(help="Dataset version (same as TARGET).")] = "",
    data_repo: Annotated[str, typer.Option(help="Data repository path or URL (default: FSML_HOME/data).")] = "",
    backend: Annotated[str, typer.Option(help="onnxruntime, onnxruntime-int8, torch or tensorrt.")] = "onnxruntime",
    metrics: Annotated[Path | None, typer.Option(help="Write the metrics here (JSON).")] = None,
    export: Annotated[Path | None, typer.Option(help="Write every prediction here (.json or .csv).")] = None,
) -> None:
    """Score a model (NAME, NAME:VERSION or NAME@ALIAS, or an export folder) on a dataset version's split through
    the serving runtime and keep every prediction.

    A registered model version's evaluation is stored (browse it at /evaluations/); an export folder is scored
    without a database (--export writes its report as JSON).
    """
    # local: evaluation imports torch, and deploy.stages and evaluation.records need Django (set up on their
    # branch); importing them here keeps `fsml --help` fast
    from datastore.loader import DatasetError
    from evaluation.evaluate import EvaluationError, headline, parse_target
    from evaluation.evaluate import evaluate as evaluate_folder
    from modelpack.archive import ArchiveError
    from modelpack.backends import BACKENDS
    from modelpack.inputs import InputError
    from modelpack.store import StoreError

    if backend not in BACKENDS:
        _fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if export is not None and export.suffix.lower() not in (".json", ".csv"):
        _fail(f"export to .json or .csv, not {export.name!r}")
    target = target or dataset
    if ":" not in target:
        target = f"{target}:{split}"
    try:
        if Path(model).is_dir():
            name, split = parse_target(target)
            if not name:
                _fail("an export folder is evaluated on a dataset version: fsml evaluate FOLDER DATASET[:split]")
            if export is not None and export.suffix.lower() != ".json":
                _fail("an export folder's predictions are written as .json (CSV is for stored evaluations)")
            where = _repo(data_repo)
            with progress() as bar:
                step = bar.add_task(f"predicting {name}:{split}", total=None)
                report = evaluate_folder(
                    Path(model),
                    dataset=name,
                    repo=where,
                    split=split,
                    backend=backend,
                    on_progress=lambda done, total: bar.update(step, completed=done, total=total),
                )
            score, macro = headline(report["task"], report["metrics"])
            console.print(
                f"{model} on {name}:{split}: score {score:.4f}, macro F1 {macro:.4f}, n={len(report['predictions'])}"
            )
            if export is not None:
                write_json(export, report)
        else:
            _django()
            from deploy import stages

            with progress() as bar:
                bar.add_task(f"evaluating {model} on {target}", total=None)
                stored = stages.evaluate_model(model, target, backend)
            console.print(
                f"{stored.model_version} on {stored.dataset_version.name}:{stored.split}: "
                f"score {stored.score:.4f}, macro F1 {stored.macro_f1:.4f}, n={stored.n}; "
                f"evaluation {stored.pk}, browse /evaluations/{stored.pk}/"
            )
            report = {"metrics": stored.metrics}
            if export is not None:
                from evaluation.records import write_export

                write_export(stored, export)
    except (ArchiveError, DatasetError, EvaluationError, InputError, LookupError, StoreError) as exc:
        _fail(str(exc) if isinstance(exc, StoreError) else getattr(exc, "reason", None) or str(exc))
    if metrics is not None:
        write_json(metrics, report["metrics"])


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    queues: Annotated[
        str,
        typer.Option(
            help="Queues to consume, comma-separated: inference (shared), callbacks, projects (background jobs), "
            "model.NAME (FSML_MODEL_QUEUES)."
        ),
    ] = "inference,callbacks,projects",
) -> None:
    """Run a Celery worker (the same command docker compose runs). With FSML_WORKER_METRICS_PORT set, its
    processes' Prometheus metrics are served there (/metrics); FSML_SERVING_BACKEND picks the model runtime."""
    # local: deploy.processes imports requests, modelpack.runtime numpy; importing them here keeps `fsml --help` fast
    from deploy.processes import worker_command
    from modelpack.inputs import InputError
    from modelpack.runtime import check_serving_backend

    try:  # a typo would otherwise fail every job, one batch at a time
        check_serving_backend(os.environ.get("FSML_SERVING_BACKEND") or "auto")
    except InputError as exc:
        _fail(f"FSML_SERVING_BACKEND: {exc.reason}")
    if os.environ.get("FSML_WORKER_METRICS_PORT") and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # A fresh folder on this machine's own disk (not FSML_HOME, which scaled replicas share), set before any
        # process imports prometheus_client.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="fsml-worker-metrics-")
    cmd = worker_command(concurrency, queues)
    os.execv(cmd[0], cmd)


@app.command()
def flower(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 5555,
) -> None:
    """Run Flower, the workers' monitor (the command docker compose runs); needs FLOWER_BASIC_AUTH off localhost."""
    if host not in LOCAL_HOSTS and ":" not in os.environ.get("FLOWER_BASIC_AUTH", ""):
        _fail(f"refusing to serve Flower on {host} without a login: set FLOWER_BASIC_AUTH=user:password")
    from deploy.processes import flower_command  # local: it imports requests; `fsml --help` stays fast

    cmd = flower_command(host, port)
    os.execv(cmd[0], cmd)


@app.command()
def web(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option()] = 2,
) -> None:
    """Migrate the database and serve the web app with gunicorn."""
    _django()
    # local: Django is set up just above; deploy.processes imports requests, which `fsml --help` need not load
    from django.conf import settings

    from deploy.processes import web_command

    if settings.DEBUG and host not in LOCAL_HOSTS:
        _fail(f"refusing to serve on {host} with DEBUG on; set DJANGO_SETTINGS_MODULE=fsml.settings.production")
    cmd = web_command(host, port, workers)
    os.execv(cmd[0], cmd)


@app.command()
def service(
    name: Annotated[str, typer.Argument(help="The calling service's user name, e.g. billing-backend.")],
    rotate: Annotated[bool, typer.Option(help="Replace its token with a new one (the old one stops working).")] = False,
) -> None:
    """Print a calling service's API token (making its user on first use) and, where callbacks are signed
    (FSML_CALLBACK_SECRET), the key that checks its callbacks' signatures."""
    _django()
    # local: serving needs Django, set up just above
    from serving.jobs.callbacks import signing_key
    from serving.web.accounts import AccountError, service_token

    try:
        token, created = service_token(name, rotate)
    except AccountError as exc:
        _fail(str(exc))
    console.print(f"{'created service' if created else 'service'} {name}", soft_wrap=True)
    console.print(f"token: {token.key}", soft_wrap=True)
    key = signing_key(token.user_id)
    console.print(f"callback key: {key}" if key else "callbacks are not signed (FSML_CALLBACK_SECRET is unset)")


@app.command()
def submit(
    model: Annotated[str, typer.Argument(help=MODEL_REF_HELP)],
    texts: Annotated[list[str], typer.Argument(help="Texts to classify, one job each.")],
    url: Annotated[str, typer.Option(envvar="FSML_URL")] = "http://127.0.0.1:8000/",
    token: Annotated[str, typer.Option(envvar="FSML_TOKEN", help="API token of the calling service.")] = "",
    timeout: Annotated[float, typer.Option()] = 60,
) -> None:
    """Submit inference jobs for MODEL (NAME, NAME:VERSION or NAME@ALIAS) through the REST API and wait for their
    results: one JSON object per job and line (JSON Lines: id, status, result, error, worker), in the order given."""
    from deploy.client import ApiClient, ApiError  # local: it imports requests; `fsml --help` stays fast

    if not token:
        _fail("an API token is needed (--token or FSML_TOKEN)")
    client = ApiClient(url, token)
    try:
        ids = [client.submit_job(model, {"text": t})["id"] for t in texts]
        for job in client.wait_jobs(ids, timeout=timeout):
            print_json_line({k: job.get(k) for k in ("id", "status", "result", "error", "worker")})
    except (ApiError, TimeoutError) as exc:
        _fail(str(exc))


def _expected(exc: BaseException) -> bool:
    """Domain errors end with a one-line message; anything else is a bug and keeps its traceback."""
    # local: these errors' modules import torch and DVC; they load only when a command has failed
    from datastore.dvcrepo import DataRepoError
    from datastore.errors import SnapshotError
    from datastore.loader import DatasetNotFound
    from modelpack.archive import ArchiveError
    from modelpack.store import StoreError
    from training.export import ExportError, ParityError
    from training.train import TrainingError

    return isinstance(
        exc,
        ArchiveError
        | CrawlError
        | DataRepoError
        | DatasetNotFound
        | ExportError
        | ParityError
        | TrainingError
        | SnapshotError
        | StoreError
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
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        sys.exit(2)
