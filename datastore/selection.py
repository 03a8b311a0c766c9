"""Choosing stored items: the filters a manager picks crawled items by, and what adding them to a project would do.

An ``ItemFilter`` is plain data (kept as JSON on a ``SourceFeed`` or a ``ProjectJob``); ``select`` turns it into one
query on ``Item``, ``preview`` counts what an add would do without writing. Every filter is a ``WHERE`` clause the
database runs (a join-free ``EXISTS`` on the task table's unique index for project membership), except a sample,
which orders the matching ids by a seeded hash in Python: repeatable for a seed, whatever the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import heapq
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length
from django.utils import timezone

from datastore.models import CrawlJob, Item, Project, Source, Task

MAX_SAMPLE = 1_000_000


class SelectionError(ValueError):
    """A filter that cannot be applied; carries the field and the reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def item_kind_for(task_type: str) -> str:
    """The kind of item a project of ``task_type`` labels: images for image classification, texts otherwise."""
    return Item.Kind.IMAGE if task_type == Project.TaskType.IMAGE_CLASSIFICATION else Item.Kind.TEXT


@dataclass
class ItemFilter:
    """Which stored items to take. Empty fields do not filter; the rest all apply (AND).

    Attributes:
        sources: source names or ids.
        crawl_jobs: crawl job ids.
        url_pattern: a regular expression searched for anywhere in the item's canonical URL (Python syntax,
            case-sensitive): ``/blog/`` keeps every URL containing ``/blog/``, ``^https://a\\.test/`` a prefix.
        fetched_after: ISO date or date-time; a date means from the start of that day (UTC).
        fetched_before: ISO date or date-time; a date means up to the end of that day (UTC), inclusive.
        languages: language codes as the crawler records them (``Item.metadata['language']``, e.g. ``en``).
        min_chars: least length of the item's text, in characters.
        max_chars: most length of the item's text, in characters.
        has_images: True keeps image items and pages the crawl stored images from; False keeps the others.
        kind: ``text`` or ``image``.
        not_in_project: a project (name or id) whose items are left out.
        sample: keep a random sample of this many of the matching items ...
        seed: ... chosen by this seed: the same filter and seed give the same sample.
    """

    sources: list[str] = field(default_factory=list)
    crawl_jobs: list[int] = field(default_factory=list)
    url_pattern: str = ""
    fetched_after: str = ""
    fetched_before: str = ""
    languages: list[str] = field(default_factory=list)
    min_chars: int | None = None
    max_chars: int | None = None
    has_images: bool | None = None
    kind: str = ""
    not_in_project: str = ""
    sample: int | None = None
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ItemFilter:
        """A filter from its JSON form (API bodies, stored feeds), checked. Raises SelectionError."""
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SelectionError(unknown[0], f"unknown filter; use {', '.join(sorted(names))}")
        try:
            built = cls(
                sources=[str(s).strip() for s in _listed(data.get("sources")) if str(s).strip()],
                crawl_jobs=[int(j) for j in _listed(data.get("crawl_jobs"))],
                url_pattern=str(data.get("url_pattern") or ""),
                fetched_after=str(data.get("fetched_after") or ""),
                fetched_before=str(data.get("fetched_before") or ""),
                languages=[str(s).strip().lower() for s in _listed(data.get("languages")) if str(s).strip()],
                min_chars=_int_or_none(data.get("min_chars")),
                max_chars=_int_or_none(data.get("max_chars")),
                has_images=_bool_or_none(data.get("has_images")),
                kind=str(data.get("kind") or ""),
                not_in_project=str(data.get("not_in_project") or ""),
                sample=_int_or_none(data.get("sample")),
                seed=int(data.get("seed") or 0),
            )
        except SelectionError:
            raise
        except (TypeError, ValueError) as exc:
            raise SelectionError("filter", f"not a valid filter: {exc}") from None
        built.check()
        return built

    def to_dict(self) -> dict[str, Any]:
        """The filter's JSON form, without the fields left empty."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, "", []) and (k != "seed" or v)}

    def check(self) -> None:
        """Refuse a filter that cannot mean anything, before any query. Raises SelectionError."""
        if self.url_pattern:
            try:
                re.compile(self.url_pattern)
            except re.error as exc:
                raise SelectionError("url_pattern", f"not a regular expression: {exc}") from None
        after, before = _moment(self.fetched_after, "fetched_after"), _moment(self.fetched_before, "fetched_before")
        if after and before and after > before:
            raise SelectionError("fetched_after", "is later than fetched_before")
        for name in ("min_chars", "max_chars"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise SelectionError(name, "cannot be negative")
        if self.min_chars is not None and self.max_chars is not None and self.min_chars > self.max_chars:
            raise SelectionError("min_chars", "is more than max_chars")
        if self.kind and self.kind not in Item.Kind.values:
            raise SelectionError("kind", f"choose one of {', '.join(Item.Kind.values)}")
        if self.sample is not None and not 1 <= self.sample <= MAX_SAMPLE:
            raise SelectionError("sample", f"must be between 1 and {MAX_SAMPLE:,}")

    def describe(self) -> str:
        """The filter in a line, for messages."""
        parts = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in self.to_dict().items()]
        return " ".join(parts) or "every item"


def _listed(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return value.split(",")
    if isinstance(value, int):
        return [value]
    return list(value)


def _int_or_none(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _bool_or_none(value: Any) -> bool | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SelectionError("has_images", f"{value!r} is not yes or no")


def _moment(text: str, name: str, end_of_day: bool = False) -> dt.datetime | None:
    """An ISO date or date-time as an aware date-time (UTC when none is given)."""
    if not text:
        return None
    try:
        if len(text) == 10:  # a date: the whole day
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min)
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SelectionError(name, f"{text!r} is not an ISO date (YYYY-MM-DD) or date-time") from None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)


def resolve_project(ref: str | int) -> Project:
    """A project by id or name. Raises SelectionError."""
    text = str(ref).strip()
    found = Project.objects.filter(Q(name=text) | Q(pk=int(text)) if text.isdigit() else Q(name=text)).first()
    if found is None:
        raise SelectionError("project", f"no project named {text!r}")
    return found


def resolve_sources(refs: list[str]) -> list[int]:
    """Source ids for names or ids. Raises SelectionError naming the first unknown one."""
    ids = []
    for ref in refs:
        query = Q(name=ref) | Q(pk=int(ref)) if ref.isdigit() else Q(name=ref)
        pk = Source.objects.filter(query).values_list("pk", flat=True).first()
        if pk is None:
            raise SelectionError("sources", f"no source named {ref!r}")
        ids.append(pk)
    return ids


def select(spec: ItemFilter) -> QuerySet[Item]:
    """The items the filter keeps, as one query (a sample: the chosen ids). Raises SelectionError."""
    spec.check()
    items = Item.objects.all()
    if spec.sources:
        items = items.filter(source_id__in=resolve_sources(spec.sources))
    if spec.crawl_jobs:
        known = set(CrawlJob.objects.filter(pk__in=spec.crawl_jobs).values_list("pk", flat=True))
        missing = sorted(set(spec.crawl_jobs) - known)
        if missing:
            raise SelectionError("crawl_jobs", f"no crawl job {missing[0]}")
        items = items.filter(crawl_job_id__in=spec.crawl_jobs)
    if spec.url_pattern:
        items = items.filter(canonical_url__regex=spec.url_pattern)
    after = _moment(spec.fetched_after, "fetched_after")
    before = _moment(spec.fetched_before, "fetched_before", end_of_day=True)
    if after:
        items = items.filter(fetched_at__gte=after)
    if before:
        items = items.filter(fetched_at__lte=before)
    if spec.languages:
        items = items.filter(metadata__language__in=spec.languages)
    if spec.min_chars is not None or spec.max_chars is not None:
        items = items.annotate(chars=Length("text"))
        if spec.min_chars is not None:
            items = items.filter(chars__gte=spec.min_chars)
        if spec.max_chars is not None:
            items = items.filter(chars__lte=spec.max_chars)
    if spec.kind:
        items = items.filter(kind=spec.kind)
    if spec.has_images is not None:
        items = items.filter(_with_images()) if spec.has_images else items.exclude(_with_images())
    if spec.not_in_project:
        other = resolve_project(spec.not_in_project)
        items = items.exclude(Exists(Task.objects.filter(project=other, item=OuterRef("pk"))))
    if spec.sample is not None:
        items = Item.objects.filter(pk__in=sample_ids(items, spec.sample, spec.seed))
    return items


def _with_images() -> Q:
    """Image items, and pages whose images the crawl stored (an image item records its page's URL as
    ``metadata['page']``). The page list is one subquery, which MariaDB materialises once."""
    pages = (
        Item.objects.filter(kind=Item.Kind.IMAGE)
        .annotate(page=KeyTextTransform("page", "metadata"))
        .exclude(page=None)
        .values("page")
    )
    return Q(kind=Item.Kind.IMAGE) | Q(url__in=pages)


def sample_ids(items: QuerySet[Item], size: int, seed: int) -> list[int]:
    """``size`` ids of ``items`` chosen by ``seed``: the smallest SHA-256 of seed + the item's URL hash. The same
    items and seed give the same sample, and a larger sample holds the smaller one."""
    rows = items.values_list("pk", "url_hash").iterator(chunk_size=5000)
    prefix = f"{seed}:".encode()
    chosen = heapq.nsmallest(size, rows, key=lambda row: hashlib.sha256(prefix + row[1].encode()).digest())
    return sorted(pk for pk, _ in chosen)


@dataclass
class Preview:
    """What adding the filter's items to a project would do."""

    matching: int  # items the filter keeps
    in_project: int  # of which already tasks of the project: skipped
    wrong_kind: int  # of which the wrong kind for the project's task type: an add is refused
    new: int  # tasks an add would create (0 while wrong_kind > 0)
    kinds: dict[str, int]  # matching items per kind

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def in_project(items: QuerySet[Item], project: Project) -> QuerySet[Item]:
    return items.filter(Exists(Task.objects.filter(project=project, item=OuterRef("pk"))))


def not_in_project(items: QuerySet[Item], project: Project) -> QuerySet[Item]:
    return items.exclude(Exists(Task.objects.filter(project=project, item=OuterRef("pk"))))


def preview(spec: ItemFilter, project: Project | None = None) -> Preview:
    """Count the filter's items and, for a project, what an add would do; writes nothing."""
    items = select(spec)
    kinds = {row["kind"]: row["n"] for row in _kind_counts(items)}
    matching = sum(kinds.values())
    if project is None:
        return Preview(matching, 0, 0, matching, kinds)
    already = in_project(items, project).count()
    wrong = matching - kinds.get(item_kind_for(project.task_type), 0)
    new = 0 if wrong else matching - already
    return Preview(matching, already, wrong, new, kinds)


def _kind_counts(items: QuerySet[Item]) -> Any:
    return items.order_by().values("kind").annotate(n=Count("pk"))
