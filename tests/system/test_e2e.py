"""The walking skeleton end to end on MariaDB with a Redis broker: every stage real."""

from __future__ import annotations

import os

import pytest

from datastore.models import DatasetVersion, InferenceJob, ModelVersion


@pytest.mark.slow
def test_demo_runs_the_whole_road_on_mysql_and_redis(live_env, clean_broker) -> None:
    from deploy.demo.road import run_demo

    result = run_demo(limit=2500, serve=False, port=0, jobs=10, epochs=8)

    assert result.items > 2400  # a few posts share their text and are stored once
    assert result.annotations == result.items
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
