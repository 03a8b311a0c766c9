"""The Docker deployment run: compose validates and fills in the file from the example env (and refuses it without
a secret), and the compose commands of flower, web and worker start and serve outside Docker. The files alone are
read in tests/unit/test_deploy_files.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose_files import COMPOSE_FILE, ENV_EXAMPLE, ROOT, SECRETS, load_compose, read_env_file


def compose_command() -> list[str]:
    """``docker compose`` when the plugin works, else ``docker-compose``; skip when neither exists."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed, so the compose file is not validated")


def run_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run compose on the repository's file with ``env_file`` as its only source of variables."""
    # A clean environment, so neither the caller's shell nor a developer's real .env fills in a variable.
    env = {key: os.environ[key] for key in ("PATH", "HOME", "DOCKER_CONFIG") if key in os.environ}
    cmd = [*compose_command(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_compose_file_validates_with_the_example_env() -> None:
    proc = run_compose(ENV_EXAMPLE, "config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_interpolates_urls_from_the_env_file() -> None:
    proc = run_compose(ENV_EXAMPLE, "config")
    assert proc.returncode == 0, proc.stderr
    resolved = yaml.safe_load(proc.stdout)["services"]
    example = read_env_file(ENV_EXAMPLE)
    for name in ("web", "worker"):
        env = resolved[name]["environment"]
        assert env["DATABASE_URL"] == f"mysql://fsml:{example['MYSQL_PASSWORD']}@mysql:3306/fsml"
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert env["SECRET_KEY"] == example["SECRET_KEY"]
        assert env["DJANGO_SETTINGS_MODULE"] == "fsml.settings.production"
        assert env["FSML_HOME"] == "/data"
        assert env["FSML_DVC_REMOTE"] == "s3://fsml-data/dvc"
        assert env["FSML_DVC_REMOTE_ENDPOINT"] == "http://minio:9000"
        assert env["AWS_SECRET_ACCESS_KEY"] == example["MINIO_ROOT_PASSWORD"]
    assert resolved["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == example["MINIO_ROOT_PASSWORD"]
    assert resolved["mysql"]["environment"]["MARIADB_PASSWORD"] == example["MYSQL_PASSWORD"]


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_run_without_a_secret(missing: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    kept = [line for line in ENV_EXAMPLE.read_text().splitlines() if not line.startswith(f"{missing}=")]
    env_file.write_text("\n".join(kept) + "\n")
    proc = run_compose(env_file, "config", "-q")
    assert proc.returncode != 0
    assert missing in proc.stderr


def test_flower_starts_with_the_compose_command_outside_docker(tmp_path: Path) -> None:
    """`fsml flower`, as the flower service runs it, on the test broker: healthy, and behind its login."""
    import requests

    from deploy.processes import Service, free_port, wait_http

    port = free_port()
    env = {**os.environ, "FLOWER_BASIC_AUTH": "ops:flower-test-pw", "DJANGO_SETTINGS_MODULE": "fsml.settings.test"}
    fsml = str(Path(sys.executable).with_name("fsml"))
    with Service("flower", [fsml, "flower", "--port", str(port)], tmp_path / "flower.log", env=env) as flower:
        wait_http(flower, f"http://127.0.0.1:{port}/healthcheck", timeout=60)
        assert requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=5).text == "OK"
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 401
        assert requests.get(f"http://127.0.0.1:{port}/", auth=("ops", "flower-test-pw"), timeout=10).status_code == 200
        # Its metrics name every task and worker: behind the same login (Flower alone serves them to anyone).
        assert requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 401
        wrong = requests.get(f"http://127.0.0.1:{port}/metrics", auth=("ops", "guess"), timeout=5)
        assert wrong.status_code == 401
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", auth=("ops", "flower-test-pw"), timeout=10)
        assert metrics.status_code == 200 and "flower_" in metrics.text
    open_env = {k: v for k, v in env.items() if k != "FLOWER_BASIC_AUTH"}
    refused = subprocess.run(
        [fsml, "flower", "--host", "0.0.0.0"], env=open_env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "without a login" in refused.stdout


def test_web_and_worker_start_with_their_compose_commands_and_production_settings(
    live_env: dict[str, str], clean_broker: None, registered_model: Any, tmp_path: Path
) -> None:
    """`fsml web` and `fsml worker` as the web and worker services run them (the compose command's arguments,
    fsml.settings.production) on the test database and broker: the site is ready and a job is served."""
    import secrets

    from django.contrib.auth import get_user_model

    from deploy.processes import Service, free_port, wait_http, wait_log
    from serving.web.submit import submit_job
    from tests.processes import wait_done

    services = load_compose()["services"]
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fsml.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FSML_METRICS_TOKEN": secrets.token_urlsafe(32),  # production refuses to start without it
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    fsml = str(Path(sys.executable).with_name("fsml"))
    web_args = [*services["web"]["command"][1:]]
    web_args[web_args.index("--host") + 1] = "127.0.0.1"  # the container's 0.0.0.0, on this machine only
    web_args[web_args.index("--port") + 1] = str(port)
    worker_args = [*services["worker"]["command"][1:], "--concurrency", "1"]  # the last option wins
    with (
        Service("web", [fsml, *web_args], tmp_path / "web.log", env=env) as web,
        Service("worker", [fsml, *worker_args], tmp_path / "worker.log", env=env) as worker,
    ):
        wait_http(web, f"http://127.0.0.1:{port}/readyz", timeout=90)
        wait_log(worker, "ready.", timeout=90)
        caller = get_user_model().objects.create(username="compose-check")
        job, _ = submit_job(caller, str(registered_model), {"text": "the flight was fine"})
        (done,) = wait_done([str(job.pk)], timeout=90)
        assert done.status == "succeeded", done.error
        assert done.worker.startswith("worker@")  # the compose worker's name, not a test worker's
