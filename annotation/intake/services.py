"""Crawled items become tasks: add items to a project by filter, create a project from a crawl, follow a source.

Every entry point (the API, the Add items page, ``fsml project ...``) calls these, so the rules live here: only a
project's managers (and staff) add items; a filter that matches nothing writes nothing and says so; items of the
wrong kind for the task type refuse the whole add, with the counts; items already in the project are skipped and
counted. Large adds run as a background ``ProjectJob`` (kind ``add_items``) on the ``projects`` queue.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from annotation import background
from annotation.services.access import AnnotationError, Role, require_role
from annotation.services.projects import start_project
from datastore.models import Project, ProjectJob, SourceFeed
from datastore.selection import (
    ItemFilter,
    Preview,
    SelectionError,
    item_kind_for,
    not_in_project,
    resolve_sources,
    select,
)
from datastore.selection import preview as count_preview
from datastore.services.feeds import create_tasks, feed_filter

BACKGROUND_AT = 5000  # adds that would create more tasks than this run as a background job by default


@dataclass
class AddResult:
    """What an add did (or, for a dry run, would do)."""

    matching: int
    skipped: int  # already tasks of the project
    created: int
    dry_run: bool = False
    job: int | None = None  # the background job doing the add, when it runs in the background

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def message(self) -> str:
        if self.job is not None:
            return f"{self.matching} item(s) match; adding them in the background (job {self.job})."
        verb = "would be added" if self.dry_run else "added"
        return f"{self.matching} item(s) match: {self.created} {verb}, {self.skipped} already in the project."


def parse_filter(data: dict[str, Any] | None) -> ItemFilter:
    """An ``ItemFilter`` from a request body; a bad filter is a 400 naming the field."""
    try:
        return ItemFilter.from_dict(data)
    except SelectionError as exc:
        raise AnnotationError(f"{exc.field}: {exc.reason}") from None


def preview(project: Project, user: Any, spec: ItemFilter) -> Preview:
    """Counts of what adding the filter's items would do; writes nothing. Managers only."""
    require_role(project, user, Role.MANAGER)
    return _counts(project, spec)


def _counts(project: Project, spec: ItemFilter) -> Preview:
    try:
        return count_preview(spec, project)
    except SelectionError as exc:
        raise AnnotationError(f"{exc.field}: {exc.reason}") from None


def _refuse_unless_addable(project: Project, spec: ItemFilter, counts: Preview) -> None:
    if counts.matching == 0:
        raise AnnotationError(f"no item matches the filter ({spec.describe()}); nothing was added")
    if counts.wrong_kind:
        wanted = item_kind_for(project.task_type)
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.kinds.items()))
        raise AnnotationError(
            f"{counts.wrong_kind} of the {counts.matching} matching items are not {wanted} items ({kinds}); "
            f"a {project.task_type} project takes {wanted} items only: add kind={wanted} to the filter. "
            "Nothing was added"
        )


def add_items(
    project: Project, user: Any, spec: ItemFilter, dry_run: bool = False, background_job: bool | None = None
) -> AddResult:
    """Add the filter's items to the project as tasks, or with ``dry_run`` only count what would happen.

    ``background_job``: True runs the add as a ``ProjectJob``, False in this call, None decides by size
    (more than ``BACKGROUND_AT`` new tasks go to the background). Raises AnnotationError: not a manager (403),
    a bad filter, no match, wrong kind (400), all before anything is written.
    """
    require_role(project, user, Role.MANAGER)
    counts = _counts(project, spec)
    _refuse_unless_addable(project, spec, counts)
    if dry_run:
        return AddResult(counts.matching, counts.in_project, counts.new, dry_run=True)
    if background_job or (background_job is None and counts.new > BACKGROUND_AT):
        with transaction.atomic():
            job = background.start(project, ProjectJob.Kind.ADD_ITEMS, {"filter": spec.to_dict()}, user)
        return AddResult(counts.matching, counts.in_project, 0, job=job.pk)
    with transaction.atomic():
        return _add(project, spec)


def _add(project: Project, spec: ItemFilter, report: background.Report | None = None) -> AddResult:
    """The add itself, inside the caller's transaction: the counts are taken again under the project's lock."""
    items = select(spec)
    matching = items.count()
    ids = list(not_in_project(items, project).values_list("pk", flat=True))
    created = create_tasks(project, ids, report)
    return AddResult(matching, matching - created, created)


@background.runs(ProjectJob.Kind.ADD_ITEMS)
def run_add_items(job: ProjectJob, report: background.Report) -> dict[str, Any]:
    """A queued add: checked again (items may have changed since it was queued), then written in one transaction."""
    spec = parse_filter(job.params.get("filter"))
    counts = _counts(job.project, spec)
    _refuse_unless_addable(job.project, spec, counts)
    report(0, counts.new)
    with transaction.atomic():
        result = _add(job.project, spec)
    report(result.created, result.created)
    return result.to_dict()


def create_project_from_crawl(
    user: Any, name: str, task_type: str, labels: list[str], spec: ItemFilter, **settings: Any
) -> tuple[Project, AddResult]:
    """Create a project with ``user`` as its manager and the filter's items as its tasks, in one transaction:
    a filter that matches nothing or items of the wrong kind leave no project behind."""
    try:
        with transaction.atomic():
            project = start_project(user, name, task_type, labels, **settings)
            result = add_items(project, user, spec)
    except IntegrityError:
        raise AnnotationError(f"a project named {name!r} already exists", 409) from None
    return project, result


def follow(project: Project, user: Any, source: str, spec: ItemFilter) -> SourceFeed:
    """Make the project follow a source: items later crawls store there and that pass the filter become tasks as
    they arrive. Following the same source again replaces the filter. Items stored before are not added: use
    ``add_items`` for them."""
    require_role(project, user, Role.MANAGER)
    try:
        (source_id,) = resolve_sources([source])
        spec = feed_filter(project, spec)
    except SelectionError as exc:
        raise AnnotationError(f"{exc.field}: {exc.reason}") from None
    spec.sources = []
    feed, _ = SourceFeed.objects.update_or_create(
        project=project,
        source_id=source_id,
        defaults={"filters": spec.to_dict(), "active": True, "created_by": user},
    )
    return feed


def unfollow(project: Project, user: Any, source: str) -> SourceFeed:
    """Stop following a source; the tasks its feed added stay, and so does its count."""
    require_role(project, user, Role.MANAGER)
    try:
        (source_id,) = resolve_sources([source])
    except SelectionError as exc:
        raise AnnotationError(f"{exc.field}: {exc.reason}") from None
    feed = SourceFeed.objects.filter(project=project, source_id=source_id, active=True).first()
    if feed is None:
        raise AnnotationError(f"project {project.name!r} does not follow source {source!r}", 404)
    feed.active = False
    feed.save(update_fields=["active"])
    return feed
