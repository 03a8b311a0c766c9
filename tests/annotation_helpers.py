"""Helpers of the annotation tests: accounts, API clients, projects with members or with gold labels, a Label Studio
export."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.services import create_project, import_records, set_role
from datastore.models import Item, Project
from tests.helpers import stored_items

# A Label Studio export of three texts: one with a gold label, one with a model's suggestion, one with neither.
LS = json.dumps(
    [
        {
            "data": {"text": "great flight"},
            "annotations": [
                {
                    "result": [
                        {"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": ["pos"]}}
                    ]
                }
            ],
        },
        {
            "data": {"text": "lost my bag"},
            "predictions": [
                {
                    "result": [
                        {"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": ["neg"]}}
                    ]
                }
            ],
        },
        {"data": {"text": "no label yet"}},
    ]
).encode()


def user(name: str) -> Any:
    """The account ``name``, made on first use."""
    return get_user_model().objects.get_or_create(username=name)[0]


def client_for(name: str) -> APIClient:
    """An API client signed in as ``name``."""
    client = APIClient()
    client.force_authenticate(user(name))
    return client


def make_project(
    task_type: str = "text_classification",
    labels: tuple[str, ...] = ("neg", "pos"),
    overlap: int = 2,
    n: int = 5,
    text: str = "text {i}",
    **options: Any,
) -> Project:
    """A project over ``n`` new stored items: alice, bob and carol annotate, rita reviews, mona manages."""
    stored_items(n, text)
    project = create_project(
        f"p-{task_type}",
        task_type,
        list(labels),
        Item.objects.order_by("id"),
        overlap=overlap,
        members=[user("alice"), user("bob"), user("carol")],
        **options,
    )
    set_role(project, user("rita"), "reviewer")
    set_role(project, user("mona"), "manager")
    return project


def project_with_gold(task_type: str, labels: list[str], records: list[dict]) -> Project:
    """A project of ``task_type`` made by a manager who imports ``records`` (text and value) as gold labels."""
    manager = user("manager")
    project = create_project(f"p-{task_type}", task_type, labels, [], members=[])
    set_role(project, manager, "manager")
    # The corpus repeats some texts, at times under another label; an import refuses such conflicts: keep the first.
    first: dict[str, dict] = {}
    for record in records:
        first.setdefault(record["text"], record)
    assert import_records(project, manager, list(first.values())) > 0.9 * len(records)
    return project
