"""A worker started with the compose service's command: its /metrics is Prometheus's (FSML_METRICS_TOKEN) while
/healthz and /readyz stay open to probes, and the compose health check passes in a shell that has no HOSTNAME (or a
wrong one), as under a runtime whose exec does not set it. Real Celery worker, MariaDB and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from deploy.processes import Service, free_port, wait_http, wait_log
from tests.compose_files import healthcheck_shell, load_compose

TOKEN = "prometheus-" + "w" * 32
CONTAINER_PORT = "127.0.0.1:9808"  # where the compose health check reads the worker's /readyz


@pytest.fixture
def compose_worker(live_env: dict[str, str], clean_broker: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # celery and python, as in the image
        "FSML_WORKER_METRICS_PORT": str(port),
        "FSML_WORKER_METRICS_HOST": "127.0.0.1",
        "FSML_METRICS_TOKEN": TOKEN,
    }
    args = [*load_compose()["services"]["worker"]["command"][1:], "--concurrency", "1"]  # the last option wins
    with Service("worker", [str(Path(bin_dir) / "fsml"), *args], tmp_path / "worker.log", env=env) as worker:
        wait_log(worker, "ready.", timeout=90)
        wait_http(worker, f"http://127.0.0.1:{port}/readyz", timeout=60)
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "env": env, "worker": worker}


def test_the_workers_metrics_need_the_token_and_its_probes_do_not(compose_worker: dict[str, Any]) -> None:
    url = compose_worker["url"]
    for headers in ({}, {"Authorization": f"Bearer {TOKEN[:-1]}"}, {"Authorization": f"Token {TOKEN}"}):
        res = requests.get(f"{url}/metrics", headers=headers, timeout=10)
        assert res.status_code == 401, (headers, res.text)
        assert res.headers["WWW-Authenticate"] == 'Bearer realm="metrics"' and "fsml_" not in res.text
    res = requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    # Prometheus's text format; the families show once a pool process recorded a job (tests/system/test_batching.py).
    assert res.status_code == 200 and res.headers["Content-Type"].startswith("text/plain; version=0.0.4"), res.text
    for path in ("/healthz", "/readyz"):
        res = requests.get(f"{url}{path}", timeout=10)
        assert res.status_code == 200 and res.json()["status"] == "ok", (path, res.text)


@pytest.mark.parametrize("hostname", [None, "", "not-this-container"])
def test_the_compose_health_check_passes_whatever_hostname_says(
    compose_worker: dict[str, Any], hostname: str | None
) -> None:
    check = healthcheck_shell("worker")
    assert CONTAINER_PORT in check
    check = check.replace(CONTAINER_PORT, f"127.0.0.1:{compose_worker['port']}")
    env = {k: v for k, v in compose_worker["env"].items() if k != "HOSTNAME"}
    if hostname is not None:
        env["HOSTNAME"] = hostname
    proc = subprocess.run(["/bin/sh", "-c", check], env=env, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pong" in proc.stdout, proc.stdout
