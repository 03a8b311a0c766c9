"""Who may do what in a project: roles, the project as a user sees it, and the error every refusal raises."""

from __future__ import annotations

from typing import Any, cast

from datastore.models import Project, ProjectMember

Role = ProjectMember.Role


class AnnotationError(Exception):
    """A request that cannot be accepted; ``status`` is the HTTP status it maps to."""

    def __init__(
        self, reason: str, status: int = 400, task_id: int | None = None, errors: list[Any] | None = None
    ) -> None:
        super().__init__(reason)
        self.reason, self.status, self.task_id, self.errors = reason, status, task_id, errors or []


def role_of(project: Project, user: Any) -> str | None:
    """The user's role in the project; staff act as managers everywhere."""
    if user.is_staff:
        return Role.MANAGER
    cached = getattr(project, "_role_for", None)
    if cached is not None and cached[0] == user.pk:
        return cached[1]
    if getattr(project, "member_user", None) == user.pk:  # annotated by annotation.api.visible_projects
        return cast(str, project.member_role)  # type: ignore[attr-defined]  # the annotation named above
    # A deactivated member keeps their rows but has no role: every page and endpoint refuses them.
    member = ProjectMember.objects.filter(project=project, user=user, is_active=True)
    return member.values_list("role", flat=True).first()


def project_for_user(project_id: int, user: Any) -> Project | None:
    """The project and the user's role in one query, or None when the user is not allowed to see it (not a
    member, or a deactivated one).

    The role is kept on the instance, so ``role_of(project, user)`` costs no second query (staff need none:
    they manage every project). A plain join: it runs on every next-task and submit request, and a
    subquery annotation costs more to build than to run.
    """
    if user.is_staff:
        return Project.objects.filter(pk=project_id).first()
    member = (
        ProjectMember.objects.select_related("project")
        .filter(project_id=project_id, user_id=user.pk, is_active=True)
        .first()
    )
    if member is None:
        return None
    project = member.project
    project._role_for = (user.pk, member.role)  # type: ignore[attr-defined]
    return project


def require_role(project: Project, user: Any, *roles: str) -> str:
    """The user's role, when it is one of ``roles``; otherwise a 403 ``AnnotationError``."""
    role = role_of(project, user)
    if role not in roles:
        raise AnnotationError(f"this needs the role {' or '.join(roles)} in project {project.name!r}", 403)
    return role  # type: ignore[return-value]


def can_create_projects(user: Any) -> bool:
    """Staff, and users granted the ``datastore.add_project`` permission (in the admin), start projects."""
    return bool(user.is_active and (user.is_staff or user.has_perm("datastore.add_project")))
