"""A project's life: create one, change its settings, add, re-role and remove members.

Each write checks who may make it before writing, so the manager pages stay thin and a script gets the same
rules. Every refusal is an ``AnnotationError`` whose reason is shown to the user as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotation.services.access import AnnotationError, Role, can_create_projects, require_role
from annotation.services.guidelines import record_guidelines
from annotation.validation import InvalidLabel, clean_hotkeys, distinct_names
from datastore.models import Annotation, Assignment, GuidelineVersion, Item, Project, ProjectMember, Task

# What a manager may change after creation. The task type is fixed: every stored label depends on it.
SETTINGS = (
    "name",
    "labels",
    "guidelines",
    "overlap",
    "allow_overlapping_spans",
    "lock_seconds",
    "queue_order",
    "hotkeys",
)


def create_project(
    name: str,
    task_type: str,
    labels: list[str],
    items: Iterable[Item] | QuerySet[Item],
    overlap: int = 1,
    guidelines: str = "",
    members: Iterable[Any] = (),
    **options: Any,
) -> Project:
    """Create a project, one task per item, and make ``members`` its annotators, in one transaction."""
    if task_type not in Project.TaskType.values:
        raise AnnotationError(f"unknown task type {task_type!r}; choose one of {Project.TaskType.values}")
    if not distinct_names(labels):
        raise AnnotationError("labels must be a non-empty list of distinct names")
    if overlap < 1:
        raise AnnotationError("overlap must be at least 1")
    if "hotkeys" in options:
        options["hotkeys"] = _hotkeys(list(labels), options["hotkeys"])
    with transaction.atomic():
        project = Project.objects.create(
            name=name, task_type=task_type, labels=list(labels), overlap=overlap, guidelines=guidelines, **options
        )
        GuidelineVersion.objects.create(project=project, number=1, text=guidelines, note="first version")
        for user in members:
            set_role(project, user, Role.ANNOTATOR)
        Task.objects.bulk_create((Task(project=project, item=item) for item in items), batch_size=1000)
    return project


def _hotkeys(labels: list[str], hotkeys: Any) -> dict[str, str]:
    try:
        return clean_hotkeys(labels, hotkeys)
    except InvalidLabel as exc:
        raise AnnotationError(exc.reason) from None


def set_role(project: Project, user: Any, role: str) -> ProjectMember:
    if role not in Role.values:
        raise AnnotationError(f"unknown role {role!r}; choose one of {Role.values}")
    member, _ = ProjectMember.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return member


def start_project(creator: Any, name: str, task_type: str, labels: list[str], **settings: Any) -> Project:
    """Create a project without tasks (they come by import) and make ``creator`` its first manager."""
    if not can_create_projects(creator):
        raise AnnotationError("only staff or users allowed to add projects can create one", 403)
    try:
        with transaction.atomic():
            project = create_project(name, task_type, labels, (), **settings)
            set_role(project, creator, Role.MANAGER)
    except IntegrityError:  # the form checked the name; another request took it meanwhile
        raise AnnotationError(f"a project named {name!r} already exists", 409) from None
    return project


def has_labels(project: Project) -> bool:
    """Whether anything in the project uses its labels: annotations, imported labels or suggestions."""
    labelled = Q(final_value__isnull=False) | Q(prediction__isnull=False)
    return (
        Annotation.objects.filter(task__project=project).exists()
        or Task.objects.filter(labelled, project=project).exists()
    )


def update_settings(project: Project, user: Any, guideline_note: str = "", **changes: Any) -> Project:
    """Change a project's settings (any of ``SETTINGS``) in one transaction, or nothing.

    New guidelines become the next guideline version, with ``guideline_note`` saying what changed.

    Once anything is labelled, labels may be added or reordered but not removed or renamed, so every
    stored label stays in the schema. A new overlap re-decides which tasks are done.
    """
    require_role(project, user, Role.MANAGER)
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        raise AnnotationError(f"these settings cannot be changed: {', '.join(unknown)}")
    if "labels" in changes and not distinct_names(changes["labels"]):
        raise AnnotationError("labels must be a non-empty list of distinct names")
    if changes.get("overlap", 1) < 1:
        raise AnnotationError("overlap must be at least 1")
    with transaction.atomic():
        current = Project.objects.select_for_update().get(pk=project.pk)
        removed = [label for label in current.labels if label not in changes.get("labels", current.labels)]
        if removed and has_labels(current):
            raise AnnotationError(
                f"labels can only be added once the project has annotations; {', '.join(removed)} would be removed",
                409,
            )
        if "hotkeys" in changes:
            changes["hotkeys"] = _hotkeys(changes.get("labels", current.labels), changes["hotkeys"])
        elif "labels" in changes:  # a renamed or removed label takes its key with it
            changes["hotkeys"] = {k: v for k, v in current.hotkeys.items() if k in changes["labels"]}
        if "guidelines" in changes:
            record_guidelines(current, user, changes["guidelines"], guideline_note)
        for field, value in changes.items():
            setattr(current, field, value)
        try:
            with transaction.atomic():
                current.save(update_fields=list(changes))
        except IntegrityError:
            raise AnnotationError(f"a project named {changes.get('name')!r} already exists", 409) from None
        if "overlap" in changes:
            tasks = Task.objects.filter(project=current)
            tasks.filter(status=Task.Status.OPEN, annotation_count__gte=current.overlap).update(status=Task.Status.DONE)
            # Tasks finished by a gold or adjudicated label stay done whatever the overlap.
            tasks.filter(
                status=Task.Status.DONE, final_value__isnull=True, annotation_count__lt=current.overlap
            ).update(status=Task.Status.OPEN)
    return current


def add_member(project: Project, user: Any, newcomer: Any, role: str) -> ProjectMember:
    """Give ``newcomer`` a role in the project; someone already in it keeps theirs (change it instead)."""
    require_role(project, user, Role.MANAGER)
    if ProjectMember.objects.filter(project=project, user=newcomer).exists():
        raise AnnotationError(f"{newcomer.username} is already a member; change their role in the list", 409)
    return set_role(project, newcomer, role)


def change_role(project: Project, user: Any, member: ProjectMember, role: str) -> ProjectMember:
    require_role(project, user, Role.MANAGER)
    with transaction.atomic():
        _keep_a_manager(project, member, role)
        return set_role(project, member.user, role)


def remove_member(project: Project, user: Any, member: ProjectMember) -> None:
    """Take ``member`` out of the project. Their annotations stay; tasks they hold go back to the queue."""
    require_role(project, user, Role.MANAGER)
    with transaction.atomic():
        _keep_a_manager(project, member, None)
        member.delete()
        now = timezone.now()
        held = Assignment.objects.filter(
            task__project=project, annotator_id=member.user_id, status=Assignment.Status.ACTIVE, expires_at__gt=now
        )
        # Updated by primary key: an UPDATE joined to the task table would lock task rows as well.
        Assignment.objects.filter(pk__in=list(held.values_list("pk", flat=True))).update(expires_at=now)


def _keep_a_manager(project: Project, member: ProjectMember, new_role: str | None) -> None:
    """Refuse to leave the project without a manager. Locks the project row, so that two managers
    demoting each other at once cannot both succeed."""
    Project.objects.select_for_update().filter(pk=project.pk).first()
    role = ProjectMember.objects.filter(pk=member.pk).values_list("role", flat=True).first()
    if role is None:
        raise AnnotationError(f"{member.user.username} is no longer a member", 404)
    if role != Role.MANAGER or new_role == Role.MANAGER:
        return
    managers = ProjectMember.objects.filter(project=project, role=Role.MANAGER, is_active=True)
    if not managers.exclude(pk=member.pk).exists():  # a deactivated manager cannot run the project
        raise AnnotationError(
            f"{member.user.username} is the project's only manager; make someone else a manager first", 409
        )
