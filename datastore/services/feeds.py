"""Tasks from stored items: the one write that turns items into tasks of a project, and the feeds that do it
as a crawl stores items (a project that follows a source).

The data store writes ``Task`` rows here because a feed runs inside the crawler's store step, which must not
import the annotation app; the annotation app's intake uses ``create_tasks`` too, so both follow one rule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from django.db import DatabaseError, transaction
from django.db.models import F

from datastore.models import CrawlJob, Project, SourceFeed, Task
from datastore.selection import ItemFilter, SelectionError, item_kind_for, select

log = logging.getLogger(__name__)

BATCH = 2000


def create_tasks(project: Project, item_ids: Sequence[int], progress: Callable[[int, int], None] | None = None) -> int:
    """Make each item a task of the project unless it is one already; returns how many were created.

    Call inside a transaction. The project row is locked first, so two adds to one project run one after the
    other and the count before and after is the number really inserted (the unique (project, item) constraint
    turns a repeat into a skipped row, never a second task).
    """
    Project.objects.select_for_update().filter(pk=project.pk).first()
    before = Task.objects.filter(project=project).count()
    ids = sorted(set(item_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        Task.objects.bulk_create([Task(project=project, item_id=pk) for pk in chunk], ignore_conflicts=True)
        if progress is not None:
            progress(start + len(chunk), len(ids))
    return Task.objects.filter(project=project).count() - before


def feed_filter(project: Project, spec: ItemFilter) -> ItemFilter:
    """A feed's filter: the project's item kind, no sample (a feed takes items as they come). Raises SelectionError."""
    if spec.sample is not None:
        raise SelectionError("sample", "a feed takes every matching item as it arrives; it cannot sample")
    wanted = item_kind_for(project.task_type)
    if spec.kind and spec.kind != wanted:
        raise SelectionError("kind", f"a {project.task_type} project takes {wanted} items, not {spec.kind}")
    spec.kind = wanted
    spec.check()
    return spec


def feed_batch(job: CrawlJob, url_hashes: Sequence[str]) -> dict[int, int]:
    """Add the items of a stored batch that pass each active feed of the job's source to the feed's project.

    Returns tasks created per feed id. A feed whose filter no longer applies (a project it names was deleted)
    or that fails on the database is logged and left for the next batch; it never fails the crawl's store.
    """
    added: dict[int, int] = {}
    if not url_hashes:
        return added
    for feed in SourceFeed.objects.filter(source_id=job.source_id, active=True).select_related("project"):
        try:
            spec = ItemFilter.from_dict(feed.filters)
            spec.sources = []  # the feed's source, by the query below
            ids = list(
                select(spec).filter(source_id=job.source_id, url_hash__in=list(url_hashes)).values_list("pk", flat=True)
            )
            if not ids:
                continue
            with transaction.atomic():
                created = create_tasks(feed.project, ids)
                SourceFeed.objects.filter(pk=feed.pk).update(items_added=F("items_added") + created)
            added[feed.pk] = created
        except (SelectionError, DatabaseError):
            log.exception("feed %s of project %s could not add items of crawl job %s", feed.pk, feed.project, job.pk)
    return added
