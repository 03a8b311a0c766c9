"""The walking skeleton end to end on MariaDB with a Redis broker: every stage real."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import authenticate

from datastore.models import DatasetVersion, InferenceJob, ModelVersion, Project, Task


@pytest.mark.slow
def test_demo_runs_the_whole_road_on_mysql_and_redis(live_env, clean_broker, capsys) -> None:
    from deploy.demo.road import run_demo

    result = run_demo(limit=2500, serve=False, port=0, jobs=10, epochs=8)

    assert result.items > 2400  # a few posts share their text and are stored once
    assert result.left_open == 20  # left for the person who opens the labelling page
    assert result.annotations == result.items - result.left_open
    version = DatasetVersion.objects.get(name=result.dataset)
    assert sum(version.counts.values()) == result.annotations
    metrics = result.test_metrics
    assert metrics["accuracy"] > metrics["majority_rate"] + 0.05, metrics
    assert result.parity_max_abs_diff < 1e-4
    model = ModelVersion.objects.get(name="sentiment")
    assert model.metrics["test"]["accuracy"] == metrics["accuracy"]
    assert result.model == "sentiment@production" and model.aliases.get().alias == "production"
    stored = model.evaluations.get()  # kept with every prediction for the evaluation pages
    assert stored.score == metrics["accuracy"] and stored.predictions.count() == metrics["n"]

    assert len(result.jobs) == 10
    jobs = InferenceJob.objects.filter(pk__in=[j["id"] for j in result.jobs])
    assert jobs.count() == 10
    for job in jobs:
        assert job.status == "succeeded", job.error
        assert job.model_version_id == model.pk
        # Served by the demo's Celery worker process, not eagerly in this process or the web server.
        assert job.worker.startswith(f"demo-{result.run_id}@")
        assert job.worker_pid not in (os.getpid(), result.worker_pid, 0, None)

    # The tasks left open are unlabelled, pre-annotated by the demo's model on its worker, and the account printed
    # at the end labels them.
    project = Project.objects.get(pk=result.project_id)
    left = list(project.tasks.filter(status=Task.Status.OPEN))
    assert len(left) == 20 and all(t.annotation_count == 0 for t in left)
    assert result.preannotation["status"] == "succeeded", result.preannotation["error"]
    assert result.preannotation["done"] == result.preannotation["total"] == 20
    assert all(t.prediction is not None and t.prediction["model"] == "sentiment:1" for t in left)
    person = authenticate(username=result.annotator_username, password=result.annotator_password)
    assert person is not None and project.memberships.get(user=person).role == "annotator"
    assert authenticate(username=result.username, password=result.password) is not None
    out = capsys.readouterr().out
    assert f"Label the 20 task(s) left open: {result.web_url}annotate/{project.pk}/" in out
    assert f"login: {result.annotator_username} / {result.annotator_password}" in out
    assert f"{result.web_url}manage/{project.pk}/" in out and f"login: {result.username} / {result.password}" in out
