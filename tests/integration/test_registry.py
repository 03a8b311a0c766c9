"""The model registry: aliases that move (promote, roll back) with every move logged, over the library, the REST
API and the admin. The command line and a worker that follows the moves are in tests/system/test_registry.py."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from datastore.models import AliasMove, ModelAlias
from datastore.services import registry
from datastore.services.registry import RegistryError
from datastore.services.registry import resolve as resolve_model
from tests.helpers import register_versions

NAME = "reg"


@pytest.mark.django_db
def test_promote_and_rollback_move_aliases_and_log_every_move(model_archive, second_archive) -> None:
    v1, v2 = register_versions(NAME, [model_archive, second_archive])
    alice = get_user_model().objects.create(username="alice", is_staff=True)

    first = registry.promote(NAME, 1, "production", alice, "first release")
    assert (first.from_version, first.to_version, first.actor) == (None, v1, "alice (api)")
    assert resolve_model(f"{NAME}@production") == v1 and resolve_model(NAME) == v2, "NAME alone is the latest"
    with pytest.raises(registry.RegistryError, match="already names version 1") as same:
        registry.promote(NAME, 1, "production", alice)
    assert same.value.status == 409

    second = registry.promote(NAME, 2, "production", alice, "better on v1:test")
    assert (second.from_version, second.to_version) == (v1, v2)
    assert resolve_model(f"{NAME}@production") == v2
    back = registry.rollback(NAME, "production", None, "complaints", via="cli")
    assert (back.action, back.from_version, back.to_version) == ("rollback", v2, v1)
    assert back.actor.endswith("(cli, no site user)") and back.moved_by is None
    assert resolve_model(f"{NAME}@production") == v1
    with pytest.raises(registry.RegistryError, match="named nothing before that"):
        registry.rollback(NAME, "production", alice)

    for call, message, status in (
        (lambda: registry.promote(NAME, 9, "staging", alice), "unknown model version reg:9", 404),
        (lambda: registry.promote(NAME, 1, "Prod!", alice), "alias 'Prod!'", 400),
        (lambda: registry.promote(NAME, 2, "staging", alice, "x" * 501), "at most 500", 400),
        (lambda: registry.rollback(NAME, "staging", alice), "has no alias 'staging'", 404),
        (lambda: registry.model_detail("nope"), "unknown model 'nope'", 404),
    ):
        with pytest.raises(registry.RegistryError, match=message) as refused:
            call()
        assert refused.value.status == status
    with pytest.raises(RegistryError, match="has no alias 'canary'"):
        resolve_model(f"{NAME}@canary")
    assert ModelAlias.objects.get(name=NAME, alias="production").model_version == v1, "refusals moved nothing"

    detail = registry.model_detail(NAME)
    assert detail["aliases"] == {"production": 1}
    assert [(m["action"], m["from"], m["to"]) for m in detail["moves"]] == [
        ("rollback", 2, 1),
        ("promote", 1, 2),
        ("promote", None, 1),
    ]
    assert registry.models_summary() == [
        {"name": NAME, "task": "text_classification", "versions": [1, 2], "latest": 2, "aliases": {"production": 1}}
    ]


@pytest.mark.django_db
def test_the_api_and_the_admin_move_aliases_for_staff_only(model_archive, second_archive) -> None:
    register_versions(NAME, [model_archive, second_archive])
    users = get_user_model().objects
    staff = users.create(username="ops", is_staff=True, is_superuser=True)
    other = users.create(username="backend")
    api = APIClient()
    api.force_authenticate(other)
    assert api.get("/api/models/").json()[0]["versions"] == [1, 2]
    refused = api.post(f"/api/models/{NAME}/aliases/production/", {"version": 1}, format="json")
    assert refused.status_code == 403 and "staff" in refused.json()["detail"]
    api.force_authenticate(staff)
    moved = api.post(f"/api/models/{NAME}/aliases/production/", {"version": 1, "reason": "go"}, format="json")
    assert moved.status_code == 200 and moved.json() | {"at": ""} == {
        "name": NAME, "alias": "production", "action": "promote", "from": None, "to": 1, "by": "ops (api)", "at": "",
    }  # fmt: skip
    for body, status, answer in (
        ({}, 400, {"version": ["This field is required."]}),
        ({"version": 7}, 404, {"detail": "unknown model version reg:7"}),
        ({"version": 1}, 409, {"detail": "reg@production already names version 1"}),
    ):
        refused = api.post(f"/api/models/{NAME}/aliases/production/", body, format="json")
        assert (refused.status_code, refused.json()) == (status, answer), body
    refused = api.post(f"/api/models/{NAME}/aliases/production/rollback/", {}, format="json")
    assert refused.status_code == 409
    assert refused.json() == {"detail": "reg@production names version 1, and it named nothing before that"}
    assert AliasMove.objects.count() == 1, "refusals moved nothing"
    assert api.get(f"/api/models/{NAME}/").json()["moves"][0]["by"] == "ops (api)"
    unknown = api.get("/api/models/nope/")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "unknown model 'nope'"}

    # The admin: promote a version with an action, roll the alias back with another; both are logged.
    from django.test import Client

    admin = Client()
    admin.force_login(staff)
    v2 = resolve_model(f"{NAME}:2")
    changelist = "/admin/datastore/modelversion/"
    admin.post(changelist, {"action": "promote_to_production", "_selected_action": [v2.pk]})
    assert resolve_model(f"{NAME}@production") == v2
    alias = ModelAlias.objects.get(name=NAME, alias="production")
    admin.post("/admin/datastore/modelalias/", {"action": "roll_back", "_selected_action": [alias.pk]})
    assert resolve_model(f"{NAME}@production").version == 1
    assert [m.actor for m in AliasMove.objects.order_by("pk")] == ["ops (api)", "ops (admin)", "ops (admin)"]
