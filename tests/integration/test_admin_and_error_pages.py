"""The admin lists every record of fsml, questions and evaluations included, under names that read right."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.services import ask, create_project
from datastore.models import Evaluation, Question
from tests.browser_support import texts

pytestmark = pytest.mark.django_db


def test_every_model_has_a_list_with_its_records_and_the_index_names_them_right() -> None:
    staff = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    project = create_project("airline", "text_classification", ["neg", "pos"], texts("a bag was lost"), members=[staff])
    ask(project, staff, "Is a lost bag negative?", project.tasks.get().pk)
    client = Client()
    client.force_login(staff)
    index = client.get("/admin/").content.decode()
    for name in ("Questions", "Evaluations", "Predictions", "Guideline versions", "Model aliases"):
        assert f">{name}<" in index, name
    assert "aliass" not in index
    for model in (m for m in apps.get_models() if admin.site.is_registered(m)):
        meta = model._meta
        res = client.get(f"/admin/{meta.app_label}/{meta.model_name}/", {"q": "bag"} if meta.model_name in (
            "question", "item") else {})  # fmt: skip
        assert res.status_code == 200, (meta.model_name, res.status_code)
    listing = client.get("/admin/datastore/question/", {"q": "lost bag"}).content.decode()
    assert "Is a lost bag negative?" in listing
    question = Question.objects.get()
    assert client.get(f"/admin/datastore/question/{question.pk}/change/").status_code == 200
    assert not admin.site.get_model_admin(Evaluation).has_add_permission(client.get("/admin/").wsgi_request)


def test_error_pages_are_the_products() -> None:
    """404 and 403 in the layout; 500 without any context (no request, user or database)."""
    from django.template.loader import render_to_string

    server_error = render_to_string("500.html")
    assert "Something went wrong on the server" in server_error and "annotation/fsml.css" in server_error
    client = Client()
    client.force_login(get_user_model().objects.create(username="ann"))
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404 and 'data-testid="site-bar"' in missing.content.decode()
    refused = client.get("/manage/new/")
    assert refused.status_code == 403 and "Not allowed" in refused.content.decode()
