"""``fsml user ...`` and ``fsml project ...`` run as an operator runs them, against the test database."""

from __future__ import annotations

import subprocess

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from datastore.models import Project, ProjectMember, SourceFeed, Task
from tests.helpers import FSML
from tests.helpers import fsml as run
from tests.integration.test_intake import crawl, image, page


def said(proc: subprocess.CompletedProcess[str]) -> str:
    return " ".join(proc.stdout.split())


def test_accounts_projects_items_and_feeds_from_the_command_line(live_env) -> None:
    users = get_user_model().objects
    nobody = run("project", "create", "early", "--task-type", "text_classification", "--labels", "a,b")
    assert nobody.returncode == 2 and "no superuser to act as" in said(nobody)

    admin = run("user", "create", "root", "--admin")
    assert admin.returncode == 0, admin.stdout + admin.stderr
    password = said(admin).split("password (shown once): ")[1].split()[0]
    assert users.get(username="root").check_password(password) and users.get(username="root").is_superuser
    typed = subprocess.run(
        [FSML, "user", "create", "ann", "--password-stdin"],
        input="a-long-pass-phrase\n",
        capture_output=True,
        text=True,
    )
    assert typed.returncode == 0 and "shown once" not in typed.stdout
    assert users.get(username="ann").check_password("a-long-pass-phrase") and not users.get(username="ann").is_staff
    assert run("user", "create", "ann").returncode == 2
    assert run("user", "make-admin", "ghost").returncode == 2
    token = run("user", "token", "ann")
    assert token.returncode == 0 and token.stdout.strip() == Token.objects.get(user__username="ann").key
    assert run("user", "token", "ann").stdout == token.stdout, "the same token, shown again"
    listed = said(run("user", "list"))
    assert "root admin yes" in listed and "ann user yes 0" in listed  # username, role, active, projects

    job = crawl("cli-site", [page(1), page(2, lang="de"), page(3, path="blog"), page(4), image(1, 1)])
    create = run(
        "project", "create", "cli-news", "--task-type", "text_classification", "--labels", "pos,neg",
        "--source", "cli-site", "--crawl-job", str(job.pk), "--kind", "text", "--language", "en",
    )  # fmt: skip
    assert create.returncode == 0, create.stdout + create.stderr
    assert "3 item(s) match: 3 added, 0 already in the project" in said(create)
    project = Project.objects.get(name="cli-news")
    assert project.memberships.get().user.username == "root" and project.tasks.count() == 3

    dry = run("project", "add-items", "cli-news", "--source", "cli-site", "--kind", "text", "--dry-run")
    assert (
        dry.returncode == 0
        and "4 matching (4 text); 3 already in the project; 0 of the wrong kind; 1 would" in said(dry)
    )
    assert project.tasks.count() == 3
    add = run("project", "add-items", str(project.pk), "--source", "cli-site", "--kind", "text")
    assert add.returncode == 0 and "4 item(s) match: 1 added, 3 already in the project" in said(add)
    wrong = run("project", "add-items", "cli-news", "--source", "cli-site")
    assert wrong.returncode == 2 and "1 of the 5 matching items are not text items" in said(wrong)
    empty = run("project", "add-items", "cli-news", "--url-pattern", "/nothing/")
    assert empty.returncode == 2 and "no item matches the filter" in said(empty)
    bad = run("project", "add-items", "cli-news", "--url-pattern", "([")
    assert bad.returncode == 2 and "url_pattern: not a regular expression" in said(bad)
    assert "Traceback" not in wrong.stderr + empty.stderr + bad.stderr
    assert project.tasks.count() == 4

    member = run("project", "add-member", "cli-news", "ann", "--role", "annotator")
    assert (
        member.returncode == 0 and ProjectMember.objects.get(project=project, user__username="ann").role == "annotator"
    )
    as_annotator = run("project", "add-items", "cli-news", "--kind", "text", "--as", "ann")
    assert as_annotator.returncode == 2 and "needs the role manager" in said(as_annotator)
    assert run("project", "add-member", "cli-news", "ghost").returncode == 2
    last = run("project", "add-member", "cli-news", "root", "--role", "annotator")
    assert last.returncode == 2 and "only manager" in said(last), "the page's rule: never without a manager"
    reviewer = run("project", "add-member", "cli-news", "ann", "--role", "reviewer")
    assert (
        reviewer.returncode == 0 and ProjectMember.objects.get(project=project, user__username="ann").role == "reviewer"
    )
    run("project", "add-member", "cli-news", "ann", "--role", "annotator")

    follow = run("project", "follow", "cli-news", "--source", "cli-site", "--url-pattern", "/blog/")
    assert follow.returncode == 0 and SourceFeed.objects.get(project=project).active
    crawl("cli-site", [page(5, path="blog"), page(6)])
    assert Task.objects.filter(project=project, item__title="page 5").exists()
    assert not Task.objects.filter(project=project, item__title="page 6").exists()
    unfollow = run("project", "unfollow", "cli-news", "--source", "cli-site")
    assert unfollow.returncode == 0 and "1 item(s) were added by it" in said(unfollow)

    projects = said(run("project", "list"))
    assert f"{project.pk} cli-news text_classification 5 0 2" in projects  # id, name, type, tasks, done, members
