"""The model registry from outside this process: the ``fsml model`` command promotes and rolls back, and a real
worker follows the moves job by job."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from datastore import services
from datastore.models import InferenceJob
from datastore.services import registry
from modelpack.runtime import load_runtime
from serving.web.submit import submit_job
from tests.helpers import fsml, register_versions
from tests.processes import wait_done

NAME = "reg"


def test_the_cli_lists_promotes_and_rolls_back(live_env, model_archive, second_archive) -> None:
    register_versions(NAME, [model_archive, second_archive])
    get_user_model().objects.create(username="ops", is_staff=True)
    promoted = fsml("model", "promote", NAME, "2", "staging", "--reason", "try it", "--user", "ops")
    assert promoted.returncode == 0 and "reg@staging: nothing -> version 2" in promoted.stdout, promoted.stdout
    listed = " ".join(fsml("model", "list").stdout.split())
    assert "reg text_classification 1, 2 2 staging=2" in listed  # name, task, versions, latest, aliases
    assert fsml("model", "promote", NAME, "1", "staging").returncode == 0
    back = fsml("model", "rollback", NAME, "staging", "--reason", "v1 was wrong")
    assert back.returncode == 0 and "version 1 -> version 2 (rollback by" in back.stdout
    shown = fsml("model", "show", NAME)
    assert "reg:2 [staging]" in shown.stdout and "rollback 1 -> 2" in shown.stdout and "try it" in shown.stdout
    for args, message in (
        (("promote", NAME, "5", "staging"), "unknown model version reg:5"),
        (("promote", NAME, "1", "Staging"), "alias 'Staging'"),
        (("promote", NAME, "1", "staging", "--user", "ghost"), "no site user named 'ghost'"),
        (("show", "nope"), "unknown model 'nope'"),
    ):
        bad = fsml("model", *args)
        assert bad.returncode == 2 and message in bad.stdout and "Traceback" not in bad.stdout + bad.stderr


def test_a_worker_follows_promotion_and_rollback_job_by_job(
    celery_worker, live_env, model_archive, second_archive
) -> None:
    """Jobs for NAME@production, submitted while the alias moves: each is answered by one whole version, the
    one recorded on the job, and jobs taken after a move are served by the version it named."""
    v1, v2 = register_versions(NAME, [model_archive, second_archive])
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
