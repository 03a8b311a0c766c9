"""A project's team on the real database: accounts a manager creates with an invitation (set-password) link,
deactivation, and each member's throughput and agreement on a known fixture."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from annotation.services import set_role
from datastore.models import Annotation, Assignment, Project, ProjectMember
from tests.annotation_helpers import client_for, make_project, user

pytestmark = pytest.mark.django_db


def page_client(name: str) -> Client:
    client = Client()
    client.force_login(user(name))
    return client


def set_password_through(link: str, password: str) -> Client:
    """Open an invitation link as a stranger would and set ``password``; returns that browser's client."""
    browser = Client()
    res = browser.get(link)
    assert res.status_code == 302  # Django moves the token into the session, then shows the form
    res = browser.get(res["Location"])
    assert res.status_code == 200 and b"set-password-form" in res.content
    res = browser.post(res.request["PATH_INFO"], {"new_password1": password, "new_password2": password})
    assert res.status_code == 302 and res["Location"] == "/accounts/reset/done/"
    return browser


def test_a_manager_creates_an_annotator_whose_invitation_link_sets_a_password_once() -> None:
    project = make_project(n=2)
    res = page_client("mona").post(
        f"/manage/{project.pk}/team/", {"username": "newbie", "email": "newbie@example.test", "role": "annotator"}
    )
    assert res.status_code == 200
    link = re.search(r'id="invite-url"[^>]*value="http://testserver([^"]+)"', res.content.decode())
    assert link, res.content.decode()
    path = link.group(1)
    newbie = get_user_model().objects.get(username="newbie")
    assert not newbie.has_usable_password() and not newbie.is_staff and not newbie.is_superuser
    member = ProjectMember.objects.get(project=project, user=newbie)
    assert (member.role, member.is_active, member.added_at is not None) == ("annotator", True, True)
    assert not Client().login(username="newbie", password="a long new password 42")

    set_password_through(path, "a long new password 42")
    signed_in = Client()
    assert signed_in.login(username="newbie", password="a long new password 42")
    assert signed_in.post(f"/api/projects/{project.pk}/next/").status_code == 200  # a working annotator

    # The link is spent, and no new one is made for an account with a password.
    stale = Client().get(path, follow=True)
    assert b"invalid-link" in stale.content
    refused = client_for("mona").post(f"/api/projects/{project.pk}/members/{member.pk}/invite/")
    assert refused.status_code == 409


def test_account_creation_is_for_managers_and_annotator_or_reviewer_roles_only() -> None:
    project = make_project(n=1)
    url = f"/api/projects/{project.pk}/members/"
    res = client_for("mona").post(url, {"username": "rev2", "role": "reviewer"}, format="json")
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["role"] == "reviewer" and body["invite_url"].startswith("http://testserver/accounts/reset/")
    assert body["emailed"] is False  # the test settings configure no email
    assert client_for("mona").post(url, {"username": "boss", "role": "manager"}, format="json").status_code == 400
    assert client_for("rita").post(url, {"username": "x1", "role": "annotator"}, format="json").status_code == 403
    assert client_for("alice").post(url, {"username": "x2", "role": "annotator"}, format="json").status_code == 403
    res = client_for("mona").post(url, {"username": "ALICE", "role": "annotator"}, format="json")
    assert res.status_code == 409 and "exists already" in res.json()["detail"]
    res = client_for("mona").post(url, {"username": "bad name!", "role": "annotator"}, format="json")
    assert res.status_code == 400
    assert not get_user_model().objects.filter(username__in=["boss", "x1", "x2", "bad name!"]).exists()
    # A re-sent link for an account that never set a password works.
    member = ProjectMember.objects.get(project=project, user__username="rev2")
    res = client_for("mona").post(f"/api/projects/{project.pk}/members/{member.pk}/invite/")
    assert res.status_code == 200
    set_password_through(res.json()["invite_url"].removeprefix("http://testserver"), "another long pw 77")


def test_a_deactivated_member_is_handed_no_task_and_refused_the_pages_until_reactivated() -> None:
    project = make_project(overlap=1, n=3)
    held = client_for("alice").post(f"/api/projects/{project.pk}/next/").json()["id"]
    alice = ProjectMember.objects.get(project=project, user=user("alice"))
    res = page_client("mona").post(f"/manage/{project.pk}/team/{alice.pk}/active/", {"active": "0"})
    assert res.status_code == 302
    assert client_for("alice").post(f"/api/projects/{project.pk}/next/").status_code == 404
    assert client_for("alice").get(f"/api/projects/{project.pk}/progress/").status_code == 404
    late = client_for("alice").post(f"/api/tasks/{held}/annotations/", {"value": "pos"}, format="json")
    assert late.status_code == 404
    for url in (f"/annotate/{project.pk}/", f"/review/{project.pk}/"):
        assert page_client("alice").get(url).status_code == 404
    assert project.name not in page_client("alice").get("/").content.decode()
    # Her held task went back to the queue: bob gets it now.
    assert client_for("bob").post(f"/api/projects/{project.pk}/next/").json()["id"] == held
    assert Assignment.objects.get(task_id=held, annotator=user("alice")).expires_at <= timezone.now()

    rita = ProjectMember.objects.get(project=project, user=user("rita"))
    client_for("mona").patch(f"/api/projects/{project.pk}/members/{rita.pk}/", {"is_active": False}, format="json")
    assert page_client("rita").get(f"/review/{project.pk}/guidelines/").status_code == 404
    assert client_for("rita").get(f"/api/projects/{project.pk}/agreement/").status_code == 404

    back = client_for("mona").patch(
        f"/api/projects/{project.pk}/members/{alice.pk}/", {"is_active": True}, format="json"
    )
    assert back.status_code == 200 and back.json()["is_active"] is True
    assert client_for("alice").post(f"/api/projects/{project.pk}/next/").status_code == 200
    # History is kept while deactivated: the team page still lists her.
    assert 'data-testid="team-alice"' in page_client("mona").get(f"/manage/{project.pk}/team/").content.decode()


def test_the_only_active_manager_cannot_be_deactivated() -> None:
    project = make_project(n=1)
    mona = ProjectMember.objects.get(project=project, user=user("mona"))
    res = client_for("mona").patch(
        f"/api/projects/{project.pk}/members/{mona.pk}/", {"is_active": False}, format="json"
    )
    assert res.status_code == 409
    set_role(project, user("max"), "manager")
    res = client_for("max").patch(f"/api/projects/{project.pk}/members/{mona.pk}/", {"is_active": False}, format="json")
    assert res.status_code == 200
    assert client_for("alice").get(f"/api/projects/{project.pk}/members/").status_code == 403


def answer_all(project: Project, plan: dict[str, list[str]], lead_time: float) -> None:
    """Each annotator in turn labels their next tasks with the values of ``plan``."""
    for name, values in plan.items():
        client = client_for(name)
        for value in values:
            task = client.post(f"/api/projects/{project.pk}/next/").json()["id"]
            res = client.post(
                f"/api/tasks/{task}/annotations/", {"value": value, "lead_time": lead_time}, format="json"
            )
            assert res.status_code == 201, res.content


def test_throughput_and_agreement_with_the_majority_per_member() -> None:
    project = make_project(overlap=3, n=4)
    # Tasks 1-4 in order. t1: pos pos neg (majority pos); t2: neg neg neg; t3: pos neg (a tie: no majority);
    # t4: alice alone (not counted for agreement).
    answer_all(project, {"alice": ["pos", "neg", "pos", "pos"], "bob": ["pos", "neg", "neg"]}, lead_time=90)
    answer_all(project, {"carol": ["neg", "neg"]}, lead_time=30)
    old = Annotation.objects.filter(annotator=user("alice")).order_by("id").first()
    assert old is not None
    Annotation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))

    rows = {r["username"]: r for r in client_for("mona").get(f"/api/projects/{project.pk}/members/").json()}
    assert set(rows) == {"alice", "bob", "carol", "rita", "mona"}
    alice, bob, carol = rows["alice"], rows["bob"], rows["carol"]
    assert (alice["annotations"], alice["last_7_days"], alice["per_hour"]) == (4, 3, 40.0)  # 4 in 360 s
    assert (bob["annotations"], bob["last_7_days"], bob["per_hour"]) == (3, 3, 40.0)
    assert (carol["annotations"], carol["per_hour"]) == (2, 120.0)  # 2 in 60 s
    assert (alice["agreement"], alice["shared_tasks"]) == (0.6667, 3)
    assert (bob["agreement"], bob["shared_tasks"]) == (0.6667, 3)
    assert (carol["agreement"], carol["shared_tasks"]) == (0.5, 2)
    assert rows["rita"]["agreement"] is None and rows["rita"]["per_hour"] is None

    html = page_client("mona").get(f"/manage/{project.pk}/team/").content.decode()
    assert "67%" in html and "50%" in html
    assert page_client("rita").get(f"/manage/{project.pk}/team/").status_code == 403


def test_the_invitation_is_emailed_only_when_the_site_has_email_settings(settings: Any) -> None:
    from django.core import mail

    project = make_project(n=1)
    url = f"/api/projects/{project.pk}/members/"
    quiet = client_for("mona").post(url, {"username": "a1", "email": "a1@example.test", "role": "annotator"})
    assert quiet.json()["emailed"] is False and not mail.outbox
    settings.EMAIL_HOST = "smtp.example.test"  # delivered to Django's test outbox
    sent = client_for("mona").post(url, {"username": "a2", "email": "a2@example.test", "role": "annotator"})
    assert sent.json()["emailed"] is True
    assert mail.outbox[0].to == ["a2@example.test"]
    assert sent.json()["invite_url"].removeprefix("http://testserver") in mail.outbox[0].body
    no_address = client_for("mona").post(url, {"username": "a3", "role": "annotator"})
    assert no_address.json()["emailed"] is False and len(mail.outbox) == 1
