"""The model registry: aliases that move (promote, roll back) with every move logged, over the library, the REST
API, the admin and the command line, and a real worker that follows the moves job by job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from datastore import services
from datastore.models import AliasMove, InferenceJob, ModelAlias
from datastore.services import registry
from datastore.services.registry import RegistryError
from datastore.services.registry import resolve as resolve_model
from modelpack.runtime import load_runtime

NAME = "reg"


def two_versions(archives: list[tuple[Path, str, dict]]) -> list[Any]:
    return [
        services.register_model_version(NAME, "text_classification", str(path), sha, manifest, None, version=i)
        for i, (path, sha, manifest) in enumerate(archives, start=1)
    ]


@pytest.fixture(scope="module")
def second_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """A second real model, trained for one epoch: its scores differ from the session model's."""
    from tests.helpers import build_model_archive

    return build_model_archive(tmp_path_factory.mktemp("second"), epochs=1)


@pytest.mark.django_db
def test_promote_and_rollback_move_aliases_and_log_every_move(model_archive, second_archive) -> None:
    v1, v2 = two_versions([model_archive, second_archive])
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
    two_versions([model_archive, second_archive])
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


def test_the_cli_lists_promotes_and_rolls_back(live_env, model_archive, second_archive) -> None:
    from tests.system.test_cli import run

    two_versions([model_archive, second_archive])
    get_user_model().objects.create(username="ops", is_staff=True)
    promoted = run("model", "promote", NAME, "2", "staging", "--reason", "try it", "--user", "ops")
    assert promoted.returncode == 0 and "reg@staging: nothing -> version 2" in promoted.stdout, promoted.stdout
    listed = run("model", "list")
    assert "reg (text_classification): versions [1, 2], latest 2; staging=2" in listed.stdout
    assert run("model", "promote", NAME, "1", "staging").returncode == 0
    back = run("model", "rollback", NAME, "staging", "--reason", "v1 was wrong")
    assert back.returncode == 0 and "version 1 -> version 2 (rollback by" in back.stdout
    shown = run("model", "show", NAME)
    assert "reg:2 [staging]" in shown.stdout and "rollback 1 -> 2" in shown.stdout and "try it" in shown.stdout
    for args, message in (
        (("promote", NAME, "5", "staging"), "unknown model version reg:5"),
        (("promote", NAME, "1", "Staging"), "alias 'Staging'"),
        (("promote", NAME, "1", "staging", "--user", "ghost"), "no site user named 'ghost'"),
        (("show", "nope"), "unknown model 'nope'"),
    ):
        bad = run("model", *args)
        assert bad.returncode == 2 and message in bad.stdout and "Traceback" not in bad.stdout + bad.stderr


def test_a_worker_follows_promotion_and_rollback_job_by_job(
    celery_worker, live_env, model_archive, second_archive
) -> None:
    """Jobs for NAME@production, submitted while the alias moves: each is answered by one whole version, the
    one recorded on the job, and jobs taken after a move are served by the version it named."""
    from serving.services import submit_job
    from tests.system.test_serving import wait_done

    v1, v2 = two_versions([model_archive, second_archive])
    ops = get_user_model().objects.create(username="ops", is_staff=True)
    runtimes = {v1.pk: load_runtime(services.unpacked_model(v1)), v2.pk: load_runtime(services.unpacked_model(v2))}
    texts = [f"{word} flight, {n} hours late" for n, word in enumerate(["great", "awful", "okay", "fine"] * 5)]

    def submit(batch: list[str]) -> list[str]:
        return [str(submit_job(ops, f"{NAME}@production", {"text": t})[0].pk) for t in batch]

    registry.promote(NAME, 1, "production", ops)
    before = wait_done(submit(texts[:5]))
    registry.promote(NAME, 2, "production", ops)
    after_promotion = wait_done(submit(texts[5:10]))
    moving = submit(texts[10:15])  # queued, some perhaps taken, when the alias moves back
    registry.rollback(NAME, "production", ops)
    after_rollback = submit(texts[15:])
    during, after = wait_done(moving), wait_done(after_rollback)

    for job in [*before, *after_promotion, *during, *after]:
        assert job.status == InferenceJob.Status.SUCCEEDED, job.error
        expected = runtimes[job.model_version_id].predict([job.inputs["text"]])[0].as_dict()
        assert job.result == expected, "the result is the recorded version's whole answer"
    assert {j.model_version_id for j in before} == {v1.pk}
    assert {j.model_version_id for j in after_promotion} == {v2.pk}
    assert {j.model_version_id for j in during} <= {v1.pk, v2.pk}
    assert {j.model_version_id for j in after} == {v1.pk}
    assert all(j.model_ref == f"{NAME}@production" for j in after)
