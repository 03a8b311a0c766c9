"""A project's team: accounts a manager creates, invitation links, deactivation, each member's throughput and
agreement, an annotator's progress, and the figures of the project list.

Invitation links are Django's own password-reset links (``default_token_generator`` and the user's id in
base64), opened at ``django.contrib.auth.views.PasswordResetConfirmView``: a link works once, until the
account's password is set, and for ``PASSWORD_RESET_TIMEOUT`` seconds.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotation.services import AnnotationError, Role, add_answer_to_guidelines, require_role, set_role
from datastore.models import Annotation, Assignment, Project, ProjectMember, Question, Task

# A manager creates accounts for these roles only; managers and staff are made by staff.
INVITABLE = (Role.ANNOTATOR, Role.REVIEWER)


@dataclass
class Invitation:
    member: ProjectMember
    path: str  # the set-password link, without scheme and host
    emailed: bool


def invite_path(account: Any) -> str:
    """The set-password link of ``account`` (Django's password-reset confirm page)."""
    uid = urlsafe_base64_encode(force_bytes(account.pk))
    return reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(account)])


def create_account(project: Project, manager: Any, username: str, email: str, role: str) -> Invitation:
    """Create an annotator's or reviewer's account without a password, make them a member of ``project`` and
    return their invitation link (also emailed to them when the site has email settings and they an address)."""
    require_role(project, manager, Role.MANAGER)
    if role not in INVITABLE:
        raise AnnotationError(f"a manager creates {' or '.join(INVITABLE)} accounts only; {role!r} is not one", 400)
    username, email = (username or "").strip(), (email or "").strip()
    try:
        UnicodeUsernameValidator()(username)
        if not username or len(username) > 150:
            raise ValidationError("a username has 1 to 150 characters")
        if email:
            validate_email(email)
    except ValidationError as exc:
        raise AnnotationError("; ".join(exc.messages)) from None
    users = get_user_model()
    try:
        with transaction.atomic():
            if users.objects.filter(username__iexact=username).exists():
                raise IntegrityError
            account = users(username=username, email=email)
            account.set_unusable_password()
            account.save()
            member = set_role(project, account, role)
            member.added_at = timezone.now()
            member.save(update_fields=["added_at"])
    except IntegrityError:
        raise AnnotationError(
            f"an account named {username!r} exists already; add it under Members by its username", 409
        ) from None
    return Invitation(member, invite_path(account), _email_invitation(project, account))


def reinvite(project: Project, manager: Any, member: ProjectMember) -> Invitation:
    """A fresh invitation link for a member who has never set a password. An account that has one is refused:
    a manager must not be able to take over an account (a staff member's, or one in other projects)."""
    require_role(project, manager, Role.MANAGER)
    account = member.user
    if account.has_usable_password() or account.is_staff or account.last_login is not None:
        raise AnnotationError(f"{account.username} has set a password; they reset it themselves", 409)
    return Invitation(member, invite_path(account), _email_invitation(project, account))


def _email_invitation(project: Project, account: Any) -> bool:
    """Email the link when the deployment configured email (EMAIL_HOST or EMAIL_BACKEND); no email is needed."""
    configured = settings.is_overridden("EMAIL_HOST") or settings.is_overridden("EMAIL_BACKEND")  # type: ignore[misc]  # django-stubs lack LazySettings.is_overridden
    if not account.email or not configured:
        return False
    body = f"You were added to the fsml project {project.name}. Set your password here:\n{invite_path(account)}\n"
    send_mail(f"fsml: {project.name}", body, None, [account.email])
    return True


def set_active(project: Project, manager: Any, member: ProjectMember, active: bool) -> ProjectMember:
    """Deactivate a member (they keep their history, are handed no task and see none of the project's pages)
    or bring them back. Tasks a deactivated member holds go back to the queue at once."""
    require_role(project, manager, Role.MANAGER)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # serialises managers' changes
        member = ProjectMember.objects.select_related("user").get(pk=member.pk)
        if not active and member.role == Role.MANAGER:
            others = ProjectMember.objects.filter(project=project, role=Role.MANAGER, is_active=True)
            if not others.exclude(pk=member.pk).exists():
                raise AnnotationError(
                    f"{member.user.username} is the project's only active manager; make someone else a manager first",
                    409,
                )
        member.is_active = active
        member.save(update_fields=["is_active"])
        if not active:
            now = timezone.now()
            held = Assignment.objects.filter(
                task__project=project, annotator_id=member.user_id, status=Assignment.Status.ACTIVE, expires_at__gt=now
            )
            Assignment.objects.filter(pk__in=list(held.values_list("pk", flat=True))).update(expires_at=now)
    return member


def member_stats(project: Project) -> list[dict[str, Any]]:
    """Every member (active or not) with their throughput and their agreement with the others.

    Throughput: annotations in all, in the last 7 days, and per hour of lead time (the seconds the label page
    measured). Agreement: on tasks with at least two annotations, the share of the member's annotations equal
    to the task's majority label (a tie has no majority: nobody agrees on that task); None when they have
    none such.
    """
    week_ago = timezone.now() - timedelta(days=7)
    counts = {
        row["annotator_id"]: row
        for row in Annotation.objects.filter(task__project=project)
        .values("annotator_id")
        .annotate(total=Count("id"), week=Count("id", filter=Q(created_at__gte=week_ago)), seconds=Sum("lead_time"))
    }
    agree, shared = majority_agreement(project)
    rows = []
    for member in project.memberships.select_related("user").order_by("user__username"):
        c = counts.get(member.user_id, {"total": 0, "week": 0, "seconds": 0.0})
        hours = (c["seconds"] or 0.0) / 3600
        rows.append(
            {
                "id": member.pk,
                "username": member.user.username,
                "email": member.user.email,
                "role": member.role,
                "is_active": member.is_active,
                "added_at": member.added_at,
                "invited": not member.user.has_usable_password() and member.user.last_login is None,
                "annotations": c["total"],
                "last_7_days": c["week"],
                "per_hour": round(c["total"] / hours, 1) if hours > 0 else None,
                "agreement": round(agree[member.user_id] / shared[member.user_id], 4)
                if shared[member.user_id]
                else None,
                "shared_tasks": shared[member.user_id],
            }
        )
    return rows


def majority_agreement(project: Project) -> tuple[Counter[int], Counter[int]]:
    """Per annotator id: annotations equal to their task's majority, and annotations on tasks with >= 2."""
    values: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = Annotation.objects.filter(task__project=project, task__annotation_count__gte=2)
    for task_id, annotator_id, value in rows.values_list("task_id", "annotator_id", "value").iterator():
        values[task_id].append((annotator_id, json.dumps(value, sort_keys=True)))
    agree: Counter[int] = Counter()
    shared: Counter[int] = Counter()
    for answers in values.values():
        if len(answers) < 2:  # the count and the rows can differ for a moment (an undo)
            continue
        ranked = Counter(v for _, v in answers).most_common(2)
        majority = ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None
        for annotator_id, value in answers:
            shared[annotator_id] += 1
            agree[annotator_id] += value == majority
    return agree, shared


def progress(project: Project, user: Any) -> dict[str, Any]:
    """What an annotator has done in the project (in all and since midnight, local time) and what is left
    for them: open tasks they could still be handed (never handed to them, or held by them now, and not yet
    annotated by ``overlap`` people); and the project's tasks and finished tasks."""
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Annotation.objects.filter(task__project=project, annotator=user).aggregate(
        done=Count("id"), today=Count("id", filter=Q(created_at__gte=midnight))
    )
    tasks = Task.objects.filter(project=project)
    figures = tasks.aggregate(total=Count("id"), done=Count("id", filter=Q(status=Task.Status.DONE)))
    handed = Assignment.objects.filter(task=OuterRef("pk"), annotator=user).exclude(
        status=Assignment.Status.ACTIVE, expires_at__gt=now
    )
    left = tasks.filter(status=Task.Status.OPEN, annotation_count__lt=project.overlap).exclude(Exists(handed)).count()
    return {
        "done_by_me": mine["done"],
        "done_today": mine["today"],
        "left_for_me": left,
        "project_total": figures["total"],
        "project_done": figures["done"],
    }


def with_figures(projects: QuerySet[Project]) -> QuerySet[Project]:
    """``projects`` annotated with ``n_tasks``, ``n_done``, ``n_open_questions`` and ``last_activity`` (the
    newest annotation), each a correlated subquery: one query for any number of projects."""

    def count(queryset: QuerySet[Any]) -> Any:
        counted = queryset.order_by().values("project_id").annotate(n=Count("id")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    newest = Annotation.objects.filter(task__project_id=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    return projects.annotate(
        n_tasks=count(Task.objects.filter(project_id=OuterRef("pk"))),
        n_done=count(Task.objects.filter(project_id=OuterRef("pk"), status=Task.Status.DONE)),
        n_open_questions=count(Question.objects.filter(project_id=OuterRef("pk"), answer="")),
        last_activity=Subquery(newest),
    )


def add_to_guidelines(project: Project, user: Any, question_id: int) -> Question:
    """Add an answered question of ``project`` to its guidelines (a new version) and link the two."""
    require_role(project, user, Role.MANAGER, Role.REVIEWER)
    with transaction.atomic():
        question = Question.objects.select_for_update().filter(project=project, pk=question_id).first()
        if question is None:
            raise AnnotationError("no such question in this project", 404)
        add_answer_to_guidelines(question, user)
    return question


def questions(project: Project, user: Any, state: str = "open") -> QuerySet[Question]:
    """The project's questions for its managers and reviewers: ``open``, ``answered`` or ``all``, newest first."""
    require_role(project, user, Role.MANAGER, Role.REVIEWER)
    rows = Question.objects.filter(project=project).select_related(
        "asked_by", "answered_by", "added_to_guidelines", "task__item"
    )
    if state == "open":
        rows = rows.filter(answer="")
    elif state == "answered":
        rows = rows.exclude(answer="")
    elif state != "all":
        raise AnnotationError("state is one of open, answered, all")
    return rows.order_by("-created_at", "-id")
