"""The manager pages on the real database: who may see and post, and bad input refused with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from annotation.services import create_project, set_role, submit
from datastore.models import Assignment, Item, Project, ProjectMember, Task
from tests.helpers import claim_task, stored_items
from tests.image_helpers import png

pytestmark = pytest.mark.django_db

NEW = {
    "name": "reviews",
    "task_type": "text_classification",
    "labels": "pos\nneg\n",
    "overlap": "1",
    "lock_seconds": "600",
    "queue_order": "sequential",
    "guidelines": "Pick the tone.",
}


def user(name: str, **fields: Any) -> Any:
    return get_user_model().objects.get_or_create(username=name, defaults=fields)[0]


def client_for(name: str, **fields: Any) -> Client:
    client = Client()
    client.force_login(user(name, **fields))
    return client


@pytest.fixture
def project() -> Project:
    """Three tasks; mona manages, rita reviews, alice and bob annotate."""
    stored_items(3, "text {i}")
    project = create_project("p", "text_classification", ["neg", "pos"], Item.objects.order_by("id"))
    for name, role in (("mona", "manager"), ("rita", "reviewer"), ("alice", "annotator"), ("bob", "annotator")):
        set_role(project, user(name), role)
    return project


def settings_of(project: Project, **changes: Any) -> dict[str, Any]:
    """The settings form as posted unchanged, with ``changes`` applied."""
    fields = {
        "name": project.name,
        "labels": "\n".join(project.labels),
        "overlap": project.overlap,
        "lock_seconds": project.lock_seconds,
        "queue_order": project.queue_order,
        "guidelines": project.guidelines,
    }
    return {**fields, **changes}


def page_urls(project: Project) -> list[str]:
    member = ProjectMember.objects.get(project=project, user__username="alice")
    return [
        f"/manage/{project.pk}/",
        f"/manage/{project.pk}/members/",
        f"/manage/{project.pk}/members/{member.pk}/",
        f"/manage/{project.pk}/import/",
    ]


def test_only_managers_and_staff_see_or_post(project: Project) -> None:
    before = (Project.objects.count(), ProjectMember.objects.count(), Task.objects.count())
    post = {**settings_of(project, name="hijacked"), "user": "mallory", "role": "manager", "action": "remove"}
    for url in ["/manage/new/", *page_urls(project)]:
        response = Client().post(url, post)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url
    for name, status in (("alice", 403), ("rita", 403), ("mallory", 404)):
        client = client_for(name)
        assert client.get(f"/manage/{project.pk}/").status_code == status
        for url in page_urls(project):
            assert client.post(url, post).status_code == status, (name, url)
        assert client.get("/manage/new/").status_code == 403
        assert client.post("/manage/new/", NEW).status_code == 403
    assert (Project.objects.count(), ProjectMember.objects.count(), Task.objects.count()) == before
    assert Project.objects.get(pk=project.pk).name == "p"

    assert client_for("mona").get(f"/manage/{project.pk}/").status_code == 200
    assert client_for("root", is_staff=True).get(f"/manage/{project.pk}/").status_code == 200
    assert client_for("mona").get(f"/manage/{project.pk}/import/").status_code == 405  # forms post


def test_home_links_managers_to_their_pages(project: Project) -> None:
    manage = f'href="/manage/{project.pk}/"'
    assert manage in client_for("mona").get("/").content.decode()
    alice_home = client_for("alice").get("/").content.decode()
    assert manage not in alice_home and "/manage/new/" not in alice_home
    assert "/manage/new/" in client_for("root", is_staff=True).get("/").content.decode()


def test_posts_need_the_csrf_token(project: Project) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user("mona"))
    assert client.post(f"/manage/{project.pk}/", settings_of(project, name="renamed")).status_code == 403
    assert Project.objects.get(pk=project.pk).name == "p"


def test_a_user_allowed_to_add_projects_creates_one_and_manages_it() -> None:
    creator = user("carl")
    creator.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="datastore"))
    client = client_for("carl")
    response = client.post("/manage/new/", {**NEW, "allow_overlapping_spans": "on"})
    project = Project.objects.get(name="reviews")
    assert response.status_code == 302 and response["Location"] == f"/manage/{project.pk}/"
    assert (project.task_type, project.labels, project.overlap) == ("text_classification", ["pos", "neg"], 1)
    assert project.guidelines == NEW["guidelines"] and project.allow_overlapping_spans
    assert ProjectMember.objects.get(project=project).user == creator
    assert ProjectMember.objects.get(project=project).role == "manager"
    assert "Created reviews" in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"name": "p"}, "name", "already exists"),
        ({"labels": " \n \n"}, "labels", "Give at least one label"),
        ({"labels": "a\nb\na"}, "labels", "a is given more than once"),
        ({"overlap": "0"}, "overlap", "greater than or equal to 1"),
        ({"task_type": "audio"}, "task_type", "not one of the available choices"),
    ],
)
def test_bad_new_projects_are_refused_with_a_reason(project: Project, changes: dict, field: str, needle: str) -> None:
    response = client_for("root", is_staff=True).post("/manage/new/", {**NEW, **changes})
    assert response.status_code == 400
    assert any(needle in error for error in response.context["form"].errors[field])
    assert list(Project.objects.values_list("name", flat=True)) == ["p"]


def test_settings_change_and_labels_only_grow_once_something_is_labelled(project: Project) -> None:
    mona, url = client_for("mona"), f"/manage/{project.pk}/"
    response = mona.post(url, settings_of(project, labels="pos\nneg", guidelines="New rules", lock_seconds=120))
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.labels, project.guidelines, project.lock_seconds) == (["pos", "neg"], "New rules", 120)

    alice = user("alice")
    submit(claim_task(project, alice).task_id, alice, "pos")
    refused = mona.post(url, settings_of(project, labels="pos\nmixed", guidelines="Other rules"))
    assert refused.status_code == 400
    assert "neg would be removed" in refused.content.decode()
    project.refresh_from_db()
    assert (project.labels, project.guidelines) == (["pos", "neg"], "New rules")  # nothing of the post was saved

    assert mona.post(url, settings_of(project, labels="pos\nneg\nmixed")).status_code == 302
    project.refresh_from_db()
    assert project.labels == ["pos", "neg", "mixed"]
    create_project("taken", "text_classification", ["a"], [])
    clash = mona.post(url, settings_of(project, name="taken"))
    assert clash.status_code == 400 and "already exists" in str(clash.context["settings_form"].errors["name"])


def test_a_new_overlap_re_decides_which_tasks_are_done(project: Project) -> None:
    alice = user("alice")
    done = claim_task(project, alice).task_id
    submit(done, alice, "pos")
    assert Task.objects.get(pk=done).status == "done"
    mona, url = client_for("mona"), f"/manage/{project.pk}/"
    assert mona.post(url, settings_of(project, overlap=2)).status_code == 302
    assert Task.objects.get(pk=done).status == "open"  # it needs a second annotation now
    assert mona.post(url, settings_of(Project.objects.get(pk=project.pk), overlap=1)).status_code == 302
    assert Task.objects.get(pk=done).status == "done"


def test_members_are_added_re_roled_and_removed(project: Project) -> None:
    mona, url = client_for("mona"), f"/manage/{project.pk}/members/"
    user("dora")
    assert mona.post(url, {"user": "dora", "role": "reviewer"}).status_code == 302
    assert ProjectMember.objects.get(project=project, user__username="dora").role == "reviewer"

    unknown = mona.post(url, {"user": "nobody", "role": "annotator"})
    assert unknown.status_code == 400 and "No active user is named “nobody”" in unknown.content.decode()
    again = mona.post(url, {"user": "dora", "role": "manager"})
    assert again.status_code == 400 and "already a member" in again.content.decode()
    bad_role = mona.post(url, {"user": "dora", "role": "owner"})
    assert bad_role.status_code == 400
    assert ProjectMember.objects.get(project=project, user__username="dora").role == "reviewer"

    dora = ProjectMember.objects.get(project=project, user__username="dora")
    assert mona.post(f"{url}{dora.pk}/", {"role": "annotator", "action": "role"}).status_code == 302
    assert ProjectMember.objects.get(pk=dora.pk).role == "annotator"

    bob = user("bob")
    held = claim_task(project, bob)
    membership = ProjectMember.objects.get(project=project, user=bob)
    assert mona.post(f"{url}{membership.pk}/", {"action": "remove"}).status_code == 302
    assert not ProjectMember.objects.filter(project=project, user=bob).exists()
    assert Assignment.objects.get(pk=held.pk).expires_at <= timezone.now()  # the task went back to the queue
    assert client_for("bob").get(f"/annotate/{project.pk}/").status_code == 404

    assert mona.post(f"{url}{membership.pk}/", {"action": "remove"}).status_code == 404  # already gone


def test_the_last_manager_stays(project: Project) -> None:
    mona = client_for("mona")
    mine = ProjectMember.objects.get(project=project, user__username="mona")
    for body in ({"action": "remove"}, {"role": "annotator", "action": "role"}):
        response = mona.post(f"/manage/{project.pk}/members/{mine.pk}/", body)
        assert response.status_code == 400 and "only manager" in response.content.decode()
        assert ProjectMember.objects.get(pk=mine.pk).role == "manager"
    set_role(project, user("rita"), "manager")
    assert mona.post(f"/manage/{project.pk}/members/{mine.pk}/", {"role": "reviewer"}).status_code == 302


def upload(name: str, payload: bytes, fmt: str) -> dict[str, Any]:
    return {"format": fmt, "file": SimpleUploadedFile(name, payload)}


def test_import_is_all_or_nothing_with_the_api_messages(project: Project) -> None:
    mona, url = client_for("mona"), f"/manage/{project.pk}/import/"
    before = Task.objects.count()
    for payload, fmt, needle in (
        (b"body,label\nx,pos\n", "csv", "the header needs a &#x27;text&#x27; column"),
        (b"[{", "labelstudio", "invalid JSON"),
        (b"text,label\nfine,pos\nodd,maybe\n", "csv", "nothing imported: record 2 value: label &#x27;maybe&#x27;"),
        (b"text\n", "csv", "no records"),
    ):
        response = mona.post(url, upload("tasks", payload, fmt))
        assert response.status_code == 400 and needle in response.content.decode(), payload
        assert Task.objects.count() == before
    assert mona.post(url, {"format": "csv"}).status_code == 400  # no file

    response = mona.post(url, upload("tasks.csv", b"text,label\nfirst new text,\ngold text,pos\n", "csv"), follow=True)
    assert "Imported 2 record(s): 2 new task(s)." in response.content.decode()
    new = Task.objects.filter(project=project).exclude(item__text__startswith="text ").order_by("id")
    assert [(t.item.text, t.status, t.final_value) for t in new] == [
        ("first new text", "open", None),
        ("gold text", "done", "pos"),
    ]


def test_the_page_links_exports_review_and_dashboard(project: Project) -> None:
    html = client_for("mona").get(f"/manage/{project.pk}/").content.decode()
    for name in ("labelstudio", "doccano", "csv"):
        assert f'href="/api/projects/{project.pk}/export/?format={name}"' in html
    assert "format=conll" not in html  # CoNLL is for span projects
    assert f'href="/review/{project.pk}/"' in html and f'href="/api/projects/{project.pk}/dashboard/"' in html
    exported = client_for("mona").get(f"/api/projects/{project.pk}/export/?format=csv")
    assert exported.status_code == 200 and exported.content.startswith(b"id,text,label")


def test_image_files_import_from_the_page(settings, tmp_path) -> None:
    settings.FSML_HOME = tmp_path
    staff = client_for("sam", is_staff=True)
    photos = create_project("photos", "image_classification", ["red", "blue"], [])
    url = f"/manage/{photos.pk}/import/"
    red, blue = SimpleUploadedFile("red.png", png((220, 20, 20))), SimpleUploadedFile("blue.png", png((20, 20, 220)))
    broken = SimpleUploadedFile("broken.png", b"\x89PNG not really")
    refused = staff.post(url, {"format": "images", "file": [red, broken]})
    assert refused.status_code == 400 and "broken.png" in refused.content.decode()
    assert not Task.objects.filter(project=photos).exists()
    red.seek(0)
    done = staff.post(url, {"format": "images", "file": [red, blue]}, follow=True)
    assert "Imported 2 image(s): 2 new task(s)." in done.content.decode()
    assert sorted(Task.objects.filter(project=photos).values_list("item__title", flat=True)) == ["blue.png", "red.png"]
    two_csvs = staff.post(
        url,
        {
            "format": "csv",
            "file": [SimpleUploadedFile("a.csv", b"text\nx\n"), SimpleUploadedFile("b.csv", b"text\ny\n")],
        },
    )
    assert two_csvs.status_code == 400 and "choose one file for this format" in two_csvs.content.decode()
