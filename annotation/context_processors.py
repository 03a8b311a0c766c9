"""What the product layout (``annotation/base.html``) shows on every page: the signed-in user's projects for
the project switcher, the one the page is about, and where each leads.

The projects are read lazily, in one query, only when a page renders the switcher (signed-out pages, the
500 page and API responses never do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from datastore.models import Project, ProjectMember


@dataclass(frozen=True)
class SwitcherEntry:
    """One project of the switcher: its name, the page it opens for this user, and whether the page is it."""

    id: int
    name: str
    url: str
    current: bool


def entry_url(project_id: int, role: str | None, staff: bool) -> str:
    """The page a project opens from the switcher: managers (and staff) its settings, reviewers its review
    page, annotators its label page."""
    if staff or role == ProjectMember.Role.MANAGER:
        return reverse("manage-project", args=[project_id])
    if role == ProjectMember.Role.REVIEWER:
        return reverse("review", args=[project_id])
    return reverse("label", args=[project_id])


@dataclass(frozen=True)
class Switcher:
    """The switcher: every entry, and the one the page is about (None on pages about no project)."""

    entries: list[SwitcherEntry]
    current: SwitcherEntry | None


def switcher(request: HttpRequest) -> Switcher:
    """The user's switcher, with its current entry."""
    entries = switcher_entries(request)
    return Switcher(entries, next((e for e in entries if e.current), None))


def current_project_id(request: HttpRequest) -> int | None:
    """The project the page is about: the ``project_id`` of the URL, when it has one."""
    match = getattr(request, "resolver_match", None)
    raw = match.kwargs.get("project_id") if match else None
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def switcher_entries(request: HttpRequest) -> list[SwitcherEntry]:
    """The user's projects (every project for staff; active memberships otherwise), in name order."""
    user: Any = request.user
    if not user.is_authenticated:
        return []
    current = current_project_id(request)
    rows: list[tuple[int, str, str | None]]
    if user.is_staff:
        rows = [(pk, name, None) for pk, name in Project.objects.order_by("name").values_list("pk", "name")]
    else:
        rows = list(
            ProjectMember.objects.filter(user=user, is_active=True)
            .order_by("project__name")
            .values_list("project_id", "project__name", "role")
        )
    return [SwitcherEntry(pk, name, entry_url(pk, role, user.is_staff), pk == current) for pk, name, role in rows]


# The main navigation's sections by the start of the path; anything else belongs to Projects.
SECTIONS = (
    ("/crawls/", "crawls"),
    ("/evaluations/", "evaluations"),
    ("/datasets/", "evaluations"),
    ("/models/", "models"),
    ("/jobs/", "models"),
    ("/api/docs/", "docs"),
    ("/api/redoc/", "docs"),
    ("/admin/", "admin"),
)


def section_of(path: str) -> str:
    """The main navigation entry a path belongs to (marked ``aria-current`` in the top bar)."""
    return next((name for prefix, name in SECTIONS if path.startswith(prefix)), "projects")


def layout(request: HttpRequest) -> dict[str, Any]:
    """``layout_switcher``: the project switcher, read on first use; ``layout_section``: the current main
    navigation entry."""
    return {
        "layout_switcher": SimpleLazyObject(lambda: switcher(request)),
        "layout_section": section_of(request.path),
    }
