"""Where a prediction came from: a served job or an evaluation case back through the model version, its dataset
version, the label and the annotations behind it, to the crawled page, its crawl job and its source's terms.

Every function returns plain JSON-ready dicts (times as ISO 8601 strings) for the API, the pages and the CLI.
Queries are bounded: an input is matched to stored items by its content hash through the per-source index,
never by reading every item. The label a dataset version froze is read from the version itself when it can be
(an evaluation's prediction of that record, or the version's files in the data repository); otherwise the
task's label as the database holds it now is given, and the chain says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from datastore import provenance
from datastore.loader import DatasetError, LoadedVersion, dataset_tag, load
from datastore.models import (
    DatasetVersion,
    InferenceJob,
    Item,
    ModelVersion,
    Prediction,
    Source,
    Task,
)

MAX_MATCHES = 5  # tasks shown for one input (one text may be stored by several sources)


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


def model_entry(model: ModelVersion) -> dict[str, Any]:
    """The model version: archive checksum, and from its manifest the training config, code revision, metrics
    and the data it was trained on."""
    manifest = model.manifest or {}
    return {
        "ref": f"{model.name}:{model.version}",
        "name": model.name,
        "version": model.version,
        "task": model.task_type,
        "archive_sha256": model.archive_sha256,
        "archive_path": model.archive_path,
        "created_at": _when(model.created_at),
        "aliases": sorted(model.aliases.values_list("alias", flat=True)),
        "code_revision": manifest.get("code_revision", ""),
        "training_config": manifest.get("training_config", {}),
        "metrics": model.metrics or manifest.get("metrics", {}),
        "dataset_version": manifest.get("dataset_version", ""),
        "trained_on": manifest.get("data_provenance"),
    }


def dataset_entry(version: DatasetVersion) -> dict[str, Any]:
    """The dataset version's record: tag, DVC hash, git revision, counts and project."""
    return {
        "name": version.name,
        "tag": dataset_tag(version.name),
        "dvc_md5": version.dvc_md5,
        "git_rev": version.git_rev,
        "path": version.path,
        "project": version.project.name,
        "project_id": version.project_id,
        "task": version.project.task_type,
        "counts": version.counts,
        "created_at": _when(version.created_at),
        "created_by": _user(version.created_by),
    }


def read_version(version: DatasetVersion, repo: str | None) -> tuple[LoadedVersion | None, str]:
    """The version's manifest and records (no images) from the data repository, or None and why not."""
    if not repo:
        return None, "no data repository given"
    try:
        return load(version.name, repo=repo, images=False), ""
    except DatasetError as exc:
        return None, f"the data repository {repo} cannot give it ({exc.reason})"


def item_entry(item: Item) -> dict[str, Any]:
    """The crawled item, its crawl job and its source with the source's licence note."""
    job = item.crawl_job
    return {
        "id": item.pk,
        "kind": item.kind,
        "url": item.url,
        "canonical_url": item.canonical_url,
        "title": item.title,
        "url_hash": item.url_hash,
        "content_hash": item.content_hash,
        "http_status": item.http_status,
        "robots": item.robots,
        "fetched_at": _when(item.fetched_at),
        "source": provenance.source_entry(item.source),
        "crawl_job": provenance.crawl_job_entry(job) | {"start_urls": job.start_urls} if job is not None else None,
    }


def task_entry(task: Task, version: DatasetVersion, frozen: dict[str, Any] | None) -> dict[str, Any]:
    """One task of the version's project: the label the version holds, the annotations and adjudication behind
    it (who, when, under which guideline version) and any request to label it again."""
    annotations = [
        {
            "annotator": _user(a.annotator),
            "value": a.value,
            "created_at": _when(a.created_at),
            "guideline_version": a.guideline_version.number if a.guideline_version is not None else None,
            "after_version": a.created_at > version.created_at,
        }
        for a in task.annotations.select_related("annotator", "guideline_version").order_by("created_at", "pk")
    ]
    relabels = [
        {
            "requested_by": _user(r.requested_by),
            "reason": r.reason,
            "created_at": _when(r.created_at),
            "after_version": r.created_at > version.created_at,
            "previous_annotations": r.previous.get("annotations", []) if isinstance(r.previous, dict) else [],
        }
        for r in task.relabel_requests.select_related("requested_by").order_by("created_at", "pk")
    ]
    return {
        "task_id": task.pk,
        "project": version.project.name,
        "status": task.status,
        "label": frozen,
        "final_value": task.final_value,
        "adjudicated_by": _user(task.adjudicated_by),
        "adjudicated_at": _when(task.adjudicated_at),
        "annotations": annotations,
        "relabel_requests": relabels,
        "changed_since_version": any(a["after_version"] for a in annotations)
        or any(r["after_version"] for r in relabels)
        or (task.adjudicated_at is not None and task.adjudicated_at > version.created_at),
        "item": item_entry(task.item),
    }


def frozen_label(version: DatasetVersion, url_hash: str, loaded: LoadedVersion | None) -> dict[str, Any] | None:
    """The record's label as the version froze it: from an evaluation's prediction of that record, else from the
    version's files. None when neither can say (the record is not in the version, or it cannot be read)."""
    found = (
        Prediction.objects.filter(evaluation__dataset_version=version, record_id=url_hash)
        .values("true_value", "evaluation__split")
        .first()
    )
    if found is not None:
        return {"value": found["true_value"], "split": found["evaluation__split"], "from": "evaluation"}
    if loaded is not None:
        for split, records in loaded.splits.items():
            for record in records:
                if record["id"] == url_hash:
                    return {"value": record["label"], "split": split, "from": "dataset files"}
    return None


def input_hash(inputs: Any) -> tuple[str, dict[str, Any]]:
    """The content hash a job's input would have as a stored item (SHA-256 of the text, or of the image file's
    bytes) and how the input is described (a text as is, an image by size)."""
    if isinstance(inputs, dict) and isinstance(inputs.get("text"), str):
        text = inputs["text"]
        return hashlib.sha256(text.encode("utf-8")).hexdigest(), {"kind": "text", "text": text}
    if isinstance(inputs, dict) and isinstance(inputs.get("image"), str):
        try:
            data = base64.b64decode(inputs["image"], validate=True)
        except (binascii.Error, ValueError):
            return "", {"kind": "image", "bytes": None}
        return hashlib.sha256(data).hexdigest(), {"kind": "image", "bytes": len(data)}
    return "", {"kind": "unknown"}


def matching_tasks(version: DatasetVersion, content_hash: str) -> list[Task]:
    """The version's project's tasks whose item has this content hash, through the (source, content_hash) index."""
    if not content_hash:
        return []
    sources = list(Source.objects.values_list("pk", flat=True))
    items = Item.objects.filter(source_id__in=sources, content_hash=content_hash).values("pk")
    return list(
        Task.objects.filter(project_id=version.project_id, item__in=items)
        .select_related("item__source", "item__crawl_job", "adjudicated_by")
        .order_by("pk")[:MAX_MATCHES]
    )


def trained_on(model: ModelVersion, loaded: LoadedVersion | None) -> dict[str, Any] | None:
    """What the model was trained on: its archive manifest's copy of the dataset's provenance, else the dataset
    version's manifest, else the project's labelled tasks as the database holds them now."""
    copied = (model.manifest or {}).get("data_provenance")
    if copied and copied.get("recorded"):
        return copied | {"from": "model manifest"}
    version = model.dataset_version
    if version is None:
        return None
    if loaded is not None and loaded.manifest.get("provenance") is not None:
        return loaded.manifest["provenance"] | {"dataset_version": version.name, "from": "dataset manifest"}
    return provenance.project_provenance(version.project) | {
        "dataset_version": version.name,
        "from": "project now (the version's manifest cannot be read)",
    }


def job_entry(job: InferenceJob) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "model_ref": job.model_ref,
        "status": job.status,
        "result": job.result,
        "error": job.error,
        "submitted_by": _user(job.submitted_by),
        "queued_at": _when(job.queued_at),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
        "worker": job.worker,
        "worker_pid": job.worker_pid,
        "batch_size": job.batch_size,
    }


def _chain(
    model: ModelVersion, content_hash: str, repo: str | None, url_hash: str = "", need_trained_on: bool = True
) -> tuple[dict[str, Any], LoadedVersion | None]:
    """Model, dataset and the matching records for an input; shared by jobs and evaluation cases. The version's
    files are read only when an answer needs them (a label no evaluation froze, or what the model was trained on
    when its manifest does not say)."""
    version = model.dataset_version
    out: dict[str, Any] = {"model": model_entry(model), "dataset": None, "records": []}
    if version is None:
        out["note"] = f"{model} records no dataset version, so its data cannot be traced."
        return out, None
    out["dataset"] = dataset_entry(version)
    tasks = matching_tasks(version, content_hash)
    if url_hash:  # an evaluation case names its record: the task of that item first
        tasks.sort(key=lambda t: t.item.url_hash != url_hash)
    evaluated = set(
        Prediction.objects.filter(
            evaluation__dataset_version=version, record_id__in=[t.item.url_hash for t in tasks]
        ).values_list("record_id", flat=True)
    )
    copied = (model.manifest or {}).get("data_provenance") or {}
    loaded = None
    if any(t.item.url_hash not in evaluated for t in tasks) or (
        need_trained_on and not tasks and not copied.get("recorded")
    ):
        loaded, reason = read_version(version, repo)
        if loaded is None:
            out["dataset"]["files"] = f"not read: {reason}"
    out["records"] = [task_entry(t, version, frozen_label(version, t.item.url_hash, loaded)) for t in tasks]
    return out, loaded


def job_lineage(job: InferenceJob, repo: str | None = None) -> dict[str, Any]:
    """The chain of a served job: the job → the model version that served it → its dataset version → when the
    input is a stored item of that version's project, the item's label and the annotations behind it → the item
    → its crawl job and source. When it is not, ``stored`` is false and ``trained_on`` says what the model was
    trained on (sources, licence notes, counts).

    Args:
        job: the job (its model version, submitter and their dataset version are read here).
        repo: path or URL of the data repository, to read the label a version froze when no evaluation of the
            version holds the record; without it the chain gives the task's label now and says so.
    """
    job = InferenceJob.objects.select_related(
        "model_version__dataset_version__project", "model_version__dataset_version__created_by", "submitted_by"
    ).get(pk=job.pk)
    content_hash, described = input_hash(job.inputs)
    chain, loaded = _chain(job.model_version, content_hash, repo)
    stored = bool(chain["records"])
    return {
        "kind": "job",
        "job": job_entry(job),
        "input": described | {"content_hash": content_hash, "stored": stored},
        **chain,
        "trained_on": None if stored else trained_on(job.model_version, loaded),
    }


def prediction_lineage(prediction: Prediction, repo: str | None = None) -> dict[str, Any]:
    """The chain of an evaluation case: the case (frozen label, prediction) → the evaluated model version → the
    dataset version → the record's task, annotations, item, crawl job and source."""
    prediction = Prediction.objects.select_related(
        "evaluation__model_version__dataset_version__project", "evaluation__dataset_version__project", "item"
    ).get(pk=prediction.pk)
    ev = prediction.evaluation
    model = ev.model_version
    content_hash = prediction.item.content_hash if prediction.item is not None else ""
    if not content_hash and prediction.text:
        content_hash = hashlib.sha256(prediction.text.encode("utf-8")).hexdigest()
    chain, _ = _chain(model, content_hash, repo, url_hash=prediction.record_id, need_trained_on=False)
    if ev.dataset_version_id != model.dataset_version_id:  # evaluated on another version than it was trained on
        chain["evaluated_on"] = dataset_entry(ev.dataset_version)
    return {
        "kind": "prediction",
        "case": {
            "evaluation": ev.pk,
            "prediction": prediction.pk,
            "record_id": prediction.record_id,
            "split": ev.split,
            "true_value": prediction.true_value,
            "predicted_value": prediction.predicted_value,
            "confidence": prediction.confidence,
            "correct": prediction.correct,
        },
        **chain,
    }


def dataset_lineage(version: DatasetVersion, repo: str | None = None) -> dict[str, Any]:
    """A dataset version's record: its sources (licence notes, crawl jobs, counts per split), project, the
    guideline versions its labels were made under, and the model versions trained on it."""
    version = DatasetVersion.objects.select_related("project", "created_by").get(pk=version.pk)
    loaded, reason = read_version(version, repo)
    models = list(ModelVersion.objects.filter(dataset_version=version).order_by("name", "version"))
    copied = next((m for m in models if (m.manifest or {}).get("data_provenance", {}).get("recorded")), None)
    if loaded is not None and loaded.manifest.get("provenance") is not None:
        origin = loaded.manifest["provenance"] | {"from": "dataset manifest"}
    elif copied is not None:  # the copy a model took of the version's manifest when it was trained
        kept = copied.manifest["data_provenance"]
        origin = {"sources": kept["sources"], "guideline_versions": kept["guideline_versions"]}
        origin["from"] = f"manifest of {copied} (a copy of the version's)"
    else:
        origin = provenance.project_provenance(version.project) | {
            "from": f"project now (the version's manifest cannot say: {reason or 'it records no provenance'})"
        }
    return {
        "kind": "dataset",
        "dataset": dataset_entry(version),
        "provenance": origin,
        "models": [{"ref": f"{m.name}:{m.version}", "archive_sha256": m.archive_sha256} for m in models],
    }
