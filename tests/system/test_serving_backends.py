"""Which runtime a worker serves a model with (``FSML_SERVING_BACKEND``), in real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from datastore.services import unpacked_model
from deploy.processes import free_port
from modelpack.runtime import load_runtime
from tests.processes import MODEL, TEXTS, start_worker, wait_done


def test_a_worker_serves_on_the_backend_it_is_told_and_counts_it(
    live_env, clean_broker, registered_model, service_client, tmp_path
) -> None:
    """``FSML_SERVING_BACKEND=torch``: a real worker runs the PyTorch program, its answers match ONNX Runtime's,
    and its /metrics says which backend loaded the model; an unknown backend fails the job with the reason."""
    import urllib.request

    port = free_port()
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    body = {"model": MODEL, "inputs": [{"text": t} for t in TEXTS[:6]]}
    ids = [j["id"] for j in service_client.post("/api/jobs/batch/", body, format="json").json()["jobs"]]
    worker = start_worker(
        tmp_path,
        "torch-served",
        FSML_SERVING_BACKEND="torch",
        FSML_WORKER_METRICS_PORT=str(port),
        FSML_WORKER_METRICS_HOST="127.0.0.1",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    try:
        done = {str(job.pk): job for job in wait_done(ids)}
        jobs = [done[pk] for pk in ids]  # in submit order
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as res:
            text = res.read().decode()
    finally:
        worker.stop()
    assert f'fsml_runtime_loads_total{{backend="torch",model="{MODEL}"}} 1.0' in text, text
    assert "loaded on torch" in worker.log_path.read_text()
    reference = load_runtime(unpacked_model(registered_model)).predict(TEXTS[:6])
    assert [j.status for j in jobs] == ["succeeded"] * 6
    assert [(j.result or {}).get("label") for j in jobs] == [p.label for p in reference]


def test_a_worker_refuses_to_start_on_an_unknown_backend() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("fsml")), "worker"],
        env={**os.environ, "FSML_SERVING_BACKEND": "tflite"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = " ".join((done.stdout + done.stderr).split())  # the console may wrap the line
    assert done.returncode == 2, said
    assert "FSML_SERVING_BACKEND: unknown serving backend 'tflite'; choose auto or one of onnxruntime" in said
    assert "Traceback" not in said
