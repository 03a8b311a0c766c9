"""``fsml lineage JOB_ID``: where a served prediction came from (also ``--dataset NAME``, ``--prediction ID``)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import typer
from rich.markup import escape

from deploy.cli_support import fail, start_django
from deploy.console import console, print_json


def say(line: str, style: str = "") -> None:
    """One line as written (no rich markup from the data), optionally styled."""
    text = escape(line)
    console.print(f"[{style}]{text}[/{style}]" if style else text, soft_wrap=True)


def heading(title: str) -> None:
    console.print(f"\n[bold]{escape(title)}[/bold]")


def lineage(
    job_id: Annotated[str, typer.Argument(help="The job's id (a UUID).", show_default=False)] = "",
    dataset: Annotated[str, typer.Option("--dataset", help="A dataset version's record instead of a job.")] = "",
    prediction: Annotated[int, typer.Option("--prediction", help="An evaluation case (prediction id) instead.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the chain as JSON.")] = False,
) -> None:
    """The chain from a served job back to the crawled page: job, model version (archive SHA-256, training config,
    code revision), dataset version, the label and annotations behind it, the item, its crawl job and source licence.
    An input that is not a stored item shows what the model was trained on instead."""
    if sum(bool(x) for x in (job_id, dataset, prediction)) != 1:
        fail("give exactly one of JOB_ID, --dataset NAME or --prediction ID")
    start_django()
    chain = _chain(job_id, dataset, prediction)
    if as_json:
        print_json(chain)
        return
    show(chain)


def _chain(job_id: str, dataset: str, prediction: int) -> dict[str, Any]:
    # local: these need Django, set up by the caller
    from django.conf import settings

    from datastore import lineage
    from datastore.models import DatasetVersion, InferenceJob, Prediction

    repo = str(settings.DVC_REPO_DIR)
    if dataset:
        version = DatasetVersion.objects.filter(name=dataset).first()
        if version is None:
            fail(f"no dataset version named {dataset!r}")
        return lineage.dataset_lineage(version, repo=repo)
    if prediction:
        case = Prediction.objects.filter(pk=prediction).first()
        if case is None:
            fail(f"no evaluation case (prediction) #{prediction}")
        return lineage.prediction_lineage(case, repo=repo)
    try:
        key = uuid.UUID(job_id)
    except ValueError:
        fail(f"{job_id!r} is not a job id (a UUID such as 3f0c...-...)")
    job = InferenceJob.objects.filter(pk=key).first()
    if job is None:
        fail(f"no job {job_id}")
    return lineage.job_lineage(job, repo=repo)


def show(chain: dict[str, Any]) -> None:
    """The chain as sections of plain lines."""
    if chain["kind"] == "job":
        job, given = chain["job"], chain["input"]
        heading(f"Job {job['id']}")
        say(f"status {job['status']}, asked for {job['model_ref']} by {job['submitted_by']}")
        say(f"queued {job['queued_at']}, finished {job['finished_at'] or '-'}, served by {job['worker'] or '-'}")
        say(f"input: {given.get('text', '')[:200]!r}" if given["kind"] == "text" else f"input: {given['kind']}")
        say(f"output: {json.dumps(job['result'])}")
        if not given["stored"]:
            say("the input is not a stored item of the model's dataset version", "yellow")
    elif chain["kind"] == "prediction":
        case = chain["case"]
        heading(f"Evaluation {case['evaluation']}, case {case['prediction']} (record {case['record_id']})")
        say(f"true {case['true_value']}, predicted {case['predicted_value']}, confidence {case['confidence']:.3f}")
    if model := chain.get("model"):
        heading(f"Model {model['ref']}")
        say(f"archive sha256 {model['archive_sha256']}")
        say(f"code revision {model['code_revision'] or '-'}; dataset {model['dataset_version'] or '-'}")
        config = model["training_config"]
        if config:
            keys = ("model", "epochs", "batch_size", "lr", "seed")
            say("training config: " + ", ".join(f"{k}={_short(config[k])}" for k in keys if k in config))
    if dataset := chain.get("dataset"):
        heading(f"Dataset {dataset['name']} (tag {dataset['tag']})")
        say(f"dvc md5 {dataset['dvc_md5']}, git rev {dataset['git_rev']}, project {dataset['project']}")
        say("records: " + ", ".join(f"{s} {n}" for s, n in dataset["counts"].items()))
    elif chain.get("note"):
        say(chain["note"], "yellow")
    for record in chain.get("records", []):
        _record(record)
    origin = chain.get("trained_on") or chain.get("provenance")
    if origin:
        heading("Trained on" if chain["kind"] == "job" else "Sources")
        for source in origin.get("sources", []):
            licence = source["licence_note"] or "no licence note"
            say(f"{source['name']} ({source['base_url']}): {source['records']} records; {licence}")
            for job in source["crawl_jobs"]:
                say(f"  crawl #{job['id']} {job['spider']} {job['started_at']}: {job['records']} records")
        if not origin.get("sources"):
            say("no sources recorded")
        say(f"(from the {origin.get('from', '')})", "dim")
    for model in chain.get("models", []):
        say(f"trained on it: {model['ref']}")


def _record(record: dict[str, Any]) -> None:
    heading(f"Label (task #{record['task_id']} in {record['project']})")
    label = record["label"]
    if label:
        say(f"in the version: {json.dumps(label['value'])} ({label['split']} split, from the {label['from']})")
    else:
        say("in the version: not read (no evaluation holds it and the version's files cannot be read)")
    if record["final_value"] is not None:
        say(
            f"adjudicated: {json.dumps(record['final_value'])} by {record['adjudicated_by']} {record['adjudicated_at']}"
        )
    for a in record["annotations"]:
        guideline = f"guidelines v{a['guideline_version']}" if a["guideline_version"] is not None else "unversioned"
        say(f"  {a['annotator']}: {json.dumps(a['value'])} at {a['created_at']} ({guideline})")
    if record["changed_since_version"]:
        say("the task changed after the version was made", "yellow")
    item = record["item"]
    heading("Item")
    say(f"{item['url']} fetched {item['fetched_at']} (HTTP {item['http_status']}, robots.txt {item['robots']})")
    source, crawl = item["source"], item["crawl_job"]
    say(f"source {source['name']} ({source['base_url']}): {source['licence_note'] or 'no licence note'}")
    if crawl:
        say(f"crawl job #{crawl['id']} {crawl['spider']} {crawl['status']}, started {crawl['started_at']}")
    else:
        say("no crawl job: the item came in by an import")


def _short(value: Any) -> str:
    return value.get("name", json.dumps(value)) if isinstance(value, dict) else str(value)
