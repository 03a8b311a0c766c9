"""Where a dataset version's records came from: per source its terms, crawl jobs and counts, and the guideline
versions its labels were made under. Written into every version's manifest (``provenance``) and copied into the
manifest of each model trained on it, so a served model can say what data it learned from under which terms."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Count, Q

from datastore.models import Annotation, CrawlJob, Project, Source, Task

LABELLED = Q(status=Task.Status.DONE) | Q(final_value__isnull=False)  # the tasks a snapshot takes records from


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def source_entry(source: Source) -> dict[str, Any]:
    """A source as provenance names it: name, base URL and the licence or terms its data is under."""
    return {"name": source.name, "base_url": source.base_url, "licence_note": source.licence_note}


def crawl_job_entry(job: CrawlJob) -> dict[str, Any]:
    return {
        "id": job.pk,
        "spider": job.spider,
        "status": job.status,
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
    }


def snapshot_provenance(project: Project, records_by_split: Mapping[str, Iterable[dict[str, Any]]]) -> dict[str, Any]:
    """Provenance of the records a snapshot writes, split by split (``records_by_split``: split -> records with
    the item's ``id``, its url_hash).

    Sources sorted by name, crawl jobs by id: the same database gives the same bytes. Items that came in by an
    import rather than a crawl count under ``crawl_job`` null (``records_without_crawl_job``).
    """
    # One pass over the project's labelled tasks (what collect_records read too): item identity -> where from.
    origin: dict[str, tuple[int, int | None]] = {}
    rows = Task.objects.filter(project=project).filter(LABELLED)
    for url_hash, source_id, job_id in rows.values_list("item__url_hash", "item__source_id", "item__crawl_job_id"):
        origin[url_hash] = (source_id, job_id)
    per_source: dict[int, Counter[str]] = defaultdict(Counter)
    per_job: dict[tuple[int, int | None], int] = Counter()
    for split, records in records_by_split.items():
        for record in records:
            where = origin.get(record["id"])
            if where is None:
                continue  # not an item of this project's tasks (cannot happen for collected records)
            per_source[where[0]][split] += 1
            per_job[where] += 1
    sources = {s.pk: s for s in Source.objects.filter(pk__in=per_source)}
    jobs = {j.pk: j for j in CrawlJob.objects.filter(pk__in={j for _, j in per_job if j is not None})}
    entries = []
    for source_id, splits in per_source.items():
        crawls = sorted((j for s, j in per_job if s == source_id and j is not None))
        entries.append(
            source_entry(sources[source_id])
            | {
                "records": sum(splits.values()),
                "splits": {split: splits.get(split, 0) for split in records_by_split},
                "crawl_jobs": [crawl_job_entry(jobs[j]) | {"records": per_job[(source_id, j)]} for j in crawls],
                "records_without_crawl_job": per_job.get((source_id, None), 0),
            }
        )
    entries.sort(key=lambda e: e["name"])
    return {"sources": entries, "guideline_versions": guideline_usage(project)}


def guideline_usage(project: Project) -> list[dict[str, Any]]:
    """How many annotations of the project's finished tasks were made under each guideline version (``number``
    null: before guidelines were versioned), sorted by number."""
    usage = (
        Annotation.objects.filter(task__project=project, task__status=Task.Status.DONE)
        .values("guideline_version__number")
        .annotate(n=Count("id"))
    )
    rows = [{"number": u["guideline_version__number"], "annotations": u["n"]} for u in usage]
    return sorted(rows, key=lambda r: (r["number"] is not None, r["number"] or 0))


def project_provenance(project: Project) -> dict[str, Any]:
    """Provenance of a project's labelled tasks as the database holds them now (no split counts): what a
    dataset version shows when its manifest cannot be read. Grouped in the database, one row per crawl job."""
    grouped = (
        Task.objects.filter(project=project)
        .filter(LABELLED)
        .values("item__source_id", "item__crawl_job_id")
        .annotate(n=Count("id"))
    )
    per_job = {(g["item__source_id"], g["item__crawl_job_id"]): g["n"] for g in grouped}
    sources = {s.pk: s for s in Source.objects.filter(pk__in={s for s, _ in per_job})}
    jobs = {j.pk: j for j in CrawlJob.objects.filter(pk__in={j for _, j in per_job if j is not None})}
    entries = []
    for source_id, source in sources.items():
        crawls = sorted(j for s, j in per_job if s == source_id and j is not None)
        entries.append(
            source_entry(source)
            | {
                "records": sum(n for (s, _), n in per_job.items() if s == source_id),
                "crawl_jobs": [crawl_job_entry(jobs[j]) | {"records": per_job[(source_id, j)]} for j in crawls],
                "records_without_crawl_job": per_job.get((source_id, None), 0),
            }
        )
    entries.sort(key=lambda e: e["name"])
    return {"sources": entries, "guideline_versions": guideline_usage(project)}
