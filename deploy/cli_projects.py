"""``fsml project ...`` and ``fsml user ...``: projects, their items and members, accounts and tokens.

The command line acts as the local operator: a project's writes are made as the user ``--as`` names (default:
the first superuser), under the same rules as the API and the pages.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deploy.cli_support import JsonOption, fail, start_django
from deploy.console import console, print_json, print_table, say

if TYPE_CHECKING:
    from datastore.models import Project
    from datastore.selection import ItemFilter

project_app = typer.Typer(help="Create projects, add crawled items and members.", no_args_is_help=True)
user_app = typer.Typer(help="Create accounts, make admins, issue API tokens.", no_args_is_help=True)


AsOption = Annotated[str, typer.Option("--as", help="Act as this user (default: the first superuser).")]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", help="Source name or id (repeatable).")]
CrawlJobOpt = Annotated[list[int] | None, typer.Option("--crawl-job", help="Crawl job id (repeatable).")]
UrlOpt = Annotated[str, typer.Option(help="Regular expression searched in the item's canonical URL.")]
AfterOpt = Annotated[str, typer.Option(help="Fetched on or after this ISO date (YYYY-MM-DD).")]
BeforeOpt = Annotated[str, typer.Option(help="Fetched on or before this ISO date (inclusive).")]
LangOpt = Annotated[str, typer.Option("--language", help="Language codes, comma-separated (en,de).")]
MinOpt = Annotated[int | None, typer.Option(help="Text length at least this many characters.")]
MaxOpt = Annotated[int | None, typer.Option(help="Text length at most this many characters.")]
ImagesOpt = Annotated[bool | None, typer.Option("--has-images/--no-images", help="Image items / pages with images.")]
KindOpt = Annotated[str, typer.Option(help="Item kind: text or image.")]
NotInOpt = Annotated[str, typer.Option(help="Leave out items already in this project (name or id).")]
SampleOpt = Annotated[int | None, typer.Option(help="A random sample of this many matching items.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the sample: the same seed gives the same items.")]


def _filter(
    source: list[str] | None,
    crawl_job: list[int] | None,
    url_pattern: str,
    fetched_after: str,
    fetched_before: str,
    language: str,
    min_chars: int | None,
    max_chars: int | None,
    has_images: bool | None,
    kind: str,
    not_in_project: str,
    sample: int | None,
    seed: int,
) -> ItemFilter:
    from datastore.selection import ItemFilter, SelectionError  # local: needs Django, set up by the caller

    data = {
        "sources": source or [],
        "crawl_jobs": crawl_job or [],
        "url_pattern": url_pattern,
        "fetched_after": fetched_after,
        "fetched_before": fetched_before,
        "languages": language,
        "min_chars": min_chars,
        "max_chars": max_chars,
        "has_images": has_images,
        "kind": kind,
        "not_in_project": not_in_project,
        "sample": sample,
        "seed": seed,
    }
    try:
        return ItemFilter.from_dict(data)
    except SelectionError as exc:
        fail(f"{exc.field}: {exc.reason}")


def _operator(name: str) -> Any:
    """The user the command acts as: ``--as``, else the first superuser."""
    from django.contrib.auth import get_user_model  # local: needs Django, set up by the caller

    users = get_user_model().objects
    if name:
        found = users.filter(username=name).first()
        if found is None:
            fail(f"no user named {name!r}")
        return found
    first = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if first is None:
        fail("no superuser to act as: create one (fsml user create NAME --admin) or name a user with --as")
    return first


def _project(ref: str) -> Project:
    from datastore.selection import SelectionError, resolve_project  # local: needs Django, set up by the caller

    try:
        return resolve_project(ref)
    except SelectionError as exc:
        fail(exc.reason)


def _counts_line(counts: Any) -> str:
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.kinds.items())) or "none"
    return (
        f"{counts.matching} matching ({kinds}); {counts.in_project} already in the project; "
        f"{counts.wrong_kind} of the wrong kind; {counts.new} would be added"
    )


@project_app.command("create")
def project_create(
    name: Annotated[str, typer.Argument(help="Project name (unique).")],
    task_type: Annotated[str, typer.Option(help="text_classification, multi_label, spans or image_classification.")],
    labels: Annotated[str, typer.Option(help="Label names, comma-separated.")],
    guidelines: Annotated[Path | None, typer.Option(help="A Markdown file of guidelines.")] = None,
    overlap: Annotated[int, typer.Option(help="Annotators per task.")] = 1,
    as_user: AsOption = "",
    source: SourceOpt = None,
    crawl_job: CrawlJobOpt = None,
    url_pattern: UrlOpt = "",
    fetched_after: AfterOpt = "",
    fetched_before: BeforeOpt = "",
    language: LangOpt = "",
    min_chars: MinOpt = None,
    max_chars: MaxOpt = None,
    has_images: ImagesOpt = None,
    kind: KindOpt = "",
    not_in_project: NotInOpt = "",
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Create a project (you its manager); with item filters, the matching crawled items become its tasks."""
    start_django()
    from annotation.intake.services import create_project_from_crawl  # local: needs Django, set up just above
    from annotation.services import AnnotationError, start_project

    user = _operator(as_user)
    text = guidelines.read_text() if guidelines is not None else ""
    names = [label.strip() for label in labels.split(",") if label.strip()]
    spec = _filter(
        source, crawl_job, url_pattern, fetched_after, fetched_before, language, min_chars, max_chars,
        has_images, kind, not_in_project, sample, seed,
    )  # fmt: skip
    settings = {"guidelines": text, "overlap": overlap}
    try:
        if spec.to_dict():
            project, added = create_project_from_crawl(user, name, task_type, names, spec, **settings)
            say(f"project {project.name} (id {project.pk}) created; {added.message()}")
        else:
            project = start_project(user, name, task_type, names, **settings)
            say(f"project {project.name} (id {project.pk}) created with no tasks; add some with fsml project add-items")
    except AnnotationError as exc:
        fail(exc.reason)


@project_app.command("add-items")
def project_add_items(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    dry_run: Annotated[bool, typer.Option(help="Count what would be added; write nothing.")] = False,
    as_user: AsOption = "",
    source: SourceOpt = None,
    crawl_job: CrawlJobOpt = None,
    url_pattern: UrlOpt = "",
    fetched_after: AfterOpt = "",
    fetched_before: BeforeOpt = "",
    language: LangOpt = "",
    min_chars: MinOpt = None,
    max_chars: MaxOpt = None,
    has_images: ImagesOpt = None,
    kind: KindOpt = "",
    not_in_project: NotInOpt = "",
    sample: SampleOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """Add the stored items the filters match to a project as tasks (items already there are skipped)."""
    start_django()
    from annotation.intake import services  # local: needs Django, set up just above
    from annotation.services import AnnotationError

    user, found = _operator(as_user), _project(project)
    spec = _filter(
        source, crawl_job, url_pattern, fetched_after, fetched_before, language, min_chars, max_chars,
        has_images, kind, not_in_project, sample, seed,
    )  # fmt: skip
    try:
        if dry_run:
            say(f"dry run, nothing written: {_counts_line(services.preview(found, user, spec))}")
            return
        # The operator waits: the add runs here, in one transaction, whatever its size.
        result = services.add_items(found, user, spec, background_job=False)
    except AnnotationError as exc:
        fail(exc.reason)
    say(result.message())


@project_app.command("follow")
def project_follow(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    source: Annotated[str, typer.Option("--source", help="Source name or id to follow.")],
    as_user: AsOption = "",
    url_pattern: UrlOpt = "",
    language: LangOpt = "",
    min_chars: MinOpt = None,
    max_chars: MaxOpt = None,
    has_images: ImagesOpt = None,
    not_in_project: NotInOpt = "",
) -> None:
    """Follow a source: items later crawls store there and that pass the filters become tasks as they arrive."""
    start_django()
    from annotation.intake import services  # local: needs Django, set up just above
    from annotation.services import AnnotationError

    user, found = _operator(as_user), _project(project)
    spec = _filter(
        None, None, url_pattern, "", "", language, min_chars, max_chars, has_images, "", not_in_project, None, 0
    )
    try:
        feed = services.follow(found, user, source, spec)
    except AnnotationError as exc:
        fail(exc.reason)
    say(f"{found.name} follows {feed.source.name} (filters: {feed.filters or 'none'})")


@project_app.command("unfollow")
def project_unfollow(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    source: Annotated[str, typer.Option("--source", help="Source name or id.")],
    as_user: AsOption = "",
) -> None:
    """Stop following a source; the tasks its feed added stay."""
    start_django()
    from annotation.intake import services  # local: needs Django, set up just above
    from annotation.services import AnnotationError

    user, found = _operator(as_user), _project(project)
    try:
        feed = services.unfollow(found, user, source)
    except AnnotationError as exc:
        fail(exc.reason)
    say(f"{found.name} no longer follows {feed.source.name} ({feed.items_added} item(s) were added by it)")


@project_app.command("list")
def project_list(as_json: JsonOption = False) -> None:
    """Every project as a table: id, name, task type, tasks, done, members. --json prints a list of objects."""
    start_django()
    from django.db.models import Count, Q  # local: needs Django, set up just above

    from datastore.models import Project

    rows = Project.objects.order_by("pk").annotate(
        n_tasks=Count("tasks", distinct=True),
        n_done=Count("tasks", filter=Q(tasks__status="done"), distinct=True),
        n_members=Count("memberships", distinct=True),
    )
    found = [
        {"id": p.pk, "name": p.name, "task_type": p.task_type, "tasks": p.n_tasks, "done": p.n_done,
         "members": p.n_members}
        for p in rows
    ]  # fmt: skip
    if as_json:
        print_json(found)
        return
    if not found:
        say("no projects yet (fsml project create NAME --task-type ... --labels ...)")
        return
    columns = ["id", "name", "task_type", "tasks", "done", "members"]
    print_table(columns, [[p[c] for c in columns] for p in found], numeric=("id", "tasks", "done", "members"))


@project_app.command("add-member")
def project_add_member(
    project: Annotated[str, typer.Argument(help="Project name or id.")],
    username: Annotated[str, typer.Argument(help="The user to add.")],
    role: Annotated[str, typer.Option(help="annotator, reviewer or manager.")] = "annotator",
    as_user: AsOption = "",
) -> None:
    """Give a user a role in a project (a member already in it: their role changes)."""
    start_django()
    from django.contrib.auth import get_user_model  # local: needs Django, set up just above

    from annotation.services import AnnotationError, add_member, change_role
    from datastore.models import ProjectMember

    user, found = _operator(as_user), _project(project)
    newcomer = get_user_model().objects.filter(username=username).first()
    if newcomer is None:
        fail(f"no user named {username!r} (fsml user create {username})")
    try:  # the page's rules: only managers, and a project never loses its last manager
        member = ProjectMember.objects.filter(project=found, user=newcomer).first()
        if member is None:
            add_member(found, user, newcomer, role)
        else:
            change_role(found, user, member, role)
    except AnnotationError as exc:
        fail(exc.reason)
    say(f"{username} is {role} in {found.name}")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    email: Annotated[str, typer.Option(help="E-mail address.")] = "",
    staff: Annotated[bool, typer.Option(help="Staff: manages every project, creates projects.")] = False,
    admin: Annotated[bool, typer.Option(help="Superuser: staff, plus the Django admin's every right.")] = False,
) -> None:
    """Create an account. Without --password-stdin a password is generated and printed once."""
    start_django()
    from django.contrib.auth import get_user_model  # local: needs Django, set up just above
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    users = get_user_model().objects
    if users.filter(username=username).exists():
        fail(f"a user named {username!r} exists")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(12)
    if not password:
        fail("an empty password on standard input")
    try:
        validate_password(password)
    except ValidationError as exc:
        fail(" ".join(exc.messages))
    account = users.create_user(username, email=email, password=password)
    account.is_staff, account.is_superuser = staff or admin, admin
    account.save(update_fields=["is_staff", "is_superuser"])
    kind = "admin" if admin else "staff user" if staff else "user"
    say(f"{kind} {username} created" + ("" if password_stdin else f"; password (shown once): {password}"))


@user_app.command("make-admin")
def user_make_admin(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Make an account a superuser (staff, every right in the Django admin)."""
    start_django()
    from django.contrib.auth import get_user_model  # local: needs Django, set up just above

    changed = get_user_model().objects.filter(username=username).update(is_staff=True, is_superuser=True)
    if not changed:
        fail(f"no user named {username!r}")
    say(f"{username} is an admin")


@user_app.command("unlock")
def user_unlock(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Let an account sign in again after too many wrong passwords (its lockout, from every address)."""
    start_django()
    from axes.utils import reset  # local: needs Django, set up just above
    from django.contrib.auth import get_user_model

    if not get_user_model().objects.filter(username=username).exists():
        fail(f"no user named {username!r}")
    cleared = reset(username=username)
    say(f"{username} unlocked" if cleared else f"{username} was not locked out")


@user_app.command("token")
def user_token(username: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """The account's API token (created on first use): send it as ``Authorization: Token KEY``."""
    start_django()
    from django.contrib.auth import get_user_model  # local: needs Django, set up just above
    from rest_framework.authtoken.models import Token

    account = get_user_model().objects.filter(username=username).first()
    if account is None:
        fail(f"no user named {username!r}")
    token, _ = Token.objects.get_or_create(user=account)
    console.print(token.key, soft_wrap=True)


@user_app.command("list")
def user_list(as_json: JsonOption = False) -> None:
    """Every account as a table: name, role (admin, staff or user), active, projects. --json prints a list of
    objects."""
    start_django()
    from django.contrib.auth import get_user_model  # local: needs Django, set up just above
    from django.db.models import Count

    found = [
        {
            "username": u.username,
            "role": "admin" if u.is_superuser else "staff" if u.is_staff else "user",
            "active": u.is_active,
            "projects": u.n,
        }
        for u in get_user_model().objects.order_by("username").annotate(n=Count("memberships"))
    ]
    if as_json:
        print_json(found)
        return
    print_table(
        ["username", "role", "active", "projects"],
        [[u["username"], u["role"], "yes" if u["active"] else "no", u["projects"]] for u in found],
        numeric=("projects",),
    )
