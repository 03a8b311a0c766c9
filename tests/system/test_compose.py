"""The Docker deployment: the compose file validates, runs the repository's commands, holds no secrets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICES = {"mysql", "redis", "minio", "web", "worker", "flower", "crawler"}
ON_DEMAND = {"crawler"}  # `docker compose run --rm crawler fsml crawl ...`; not started by `up`
SECRETS = ("SECRET_KEY", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD", "MINIO_ROOT_PASSWORD", "FLOWER_BASIC_AUTH")


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


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of an env file (comments and blank lines skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def parse_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``fsml ARGS`` with the real CLI (without running it): the subcommand and its options."""
    import typer

    from deploy.cli import app

    assert args[0] == "fsml", args
    group = typer.main.get_command(app)  # a click-style group (typer may bundle its own click)
    command = getattr(group, "commands", {}).get(args[1])
    assert command is not None, f"fsml has no subcommand {args[1]!r}"
    with command.make_context(args[1], list(args[2:])) as ctx:  # raises on an unknown option
        return args[1], dict(ctx.params)


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


def test_every_service_has_a_healthcheck_and_a_restart_policy() -> None:
    services = load_compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        if name in ON_DEMAND:
            assert service["profiles"] and service["restart"] == "no", f"{name} must only run when asked"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"


def test_services_depend_on_healthy_backends() -> None:
    services = load_compose()["services"]
    assert services["web"]["depends_on"]["mysql"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["minio"]["condition"] == "service_healthy"
    # The worker waits for a healthy web, i.e. for the migrations `fsml web` runs.
    assert services["worker"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "inspect ping" in worker_check and ":9808/readyz" in worker_check


def test_redis_keeps_queued_jobs_and_state_lives_in_named_volumes() -> None:
    compose = load_compose()
    services = compose["services"]
    assert "--appendonly" in services["redis"]["command"]
    assert set(compose["volumes"]) == {"mysql-data", "redis-data", "minio-data", "fsml-data"}
    assert "minio-data:/data" in services["minio"]["volumes"]
    assert "mysql-data:/var/lib/mysql" in services["mysql"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    for name in ("web", "worker"):
        assert "fsml-data:/data" in services[name]["volumes"]
        assert services[name]["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}


def test_containers_run_the_repository_commands() -> None:
    from deploy.processes import flower_command, web_command, worker_command

    services = load_compose()["services"]
    assert services["web"]["command"][:2] == ["fsml", "web"]
    assert services["worker"]["command"][:2] == ["fsml", "worker"]

    name, params = parse_cli(services["web"]["command"])
    assert name == "web"
    assert params["host"] == "0.0.0.0" and params["port"] == 8000
    assert web_command(**params)[1:4] == ["-m", "gunicorn", "fsml.wsgi"]

    name, params = parse_cli(services["worker"]["command"])
    assert name == "worker"
    assert params["concurrency"] == 2
    assert worker_command(**params)[1:5] == ["-m", "celery", "-A", "fsml"]

    name, params = parse_cli(services["flower"]["command"])
    assert (name, params) == ("flower", {"host": "0.0.0.0", "port": 5555})
    assert flower_command(**params)[1:6] == ["-m", "celery", "-A", "fsml", "flower"]
    assert "/healthcheck" in " ".join(services["flower"]["healthcheck"]["test"])

    assert services["crawler"]["command"][:2] == ["fsml", "crawl"]
    # The documented on-demand run parses with the real CLI.
    assert parse_cli(["fsml", "crawl", "site", "https://example.com/", "--source", "example"])[0] == "crawl"


def test_no_literal_secret_in_the_compose_file() -> None:
    services = load_compose()["services"]
    reference = re.compile(r"^\$\{SECRET_KEY(:[?-][^}]*)?\}$")
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert reference.match(env["SECRET_KEY"]), env["SECRET_KEY"]
        assert "${MYSQL_PASSWORD" in env["DATABASE_URL"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"].startswith("${MINIO_ROOT_PASSWORD")
    mysql_env = services["mysql"]["environment"]
    assert mysql_env["MARIADB_PASSWORD"].startswith("${MYSQL_PASSWORD")
    assert mysql_env["MARIADB_ROOT_PASSWORD"].startswith("${MYSQL_ROOT_PASSWORD")
    text = COMPOSE_FILE.read_text()
    assert "env_file" not in text  # values come only through ${...} interpolation
    for key in SECRETS:
        assert read_env_file(ENV_EXAMPLE)[key] not in text


def test_env_example_documents_every_variable() -> None:
    example = read_env_file(ENV_EXAMPLE)
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    assert used <= set(example), f"not in .env.example: {sorted(used - set(example))}"
    text = ENV_EXAMPLE.read_text()
    assert 'python -c "import secrets; print(secrets.token_urlsafe(50))"' in text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\w+=", line):
            assert i > 0 and lines[i - 1].startswith("#"), f"no comment above {line}"
    # The placeholder is too short for production settings, so an unedited copy cannot go live.
    assert len(example["SECRET_KEY"]) < 32


def test_dockerfile_installs_the_cpu_torch_pin_and_the_mysql_and_s3_extras() -> None:
    text = DOCKERFILE.read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    torch_pin = next(
        dep.split("#")[0].strip() for dep in pyproject["project"]["dependencies"] if dep.startswith("torch")
    )
    assert torch_pin == "torch==2.13.0"
    assert re.search(r"pip install --extra-index-url https://download\.pytorch\.org/whl/cpu torch==2\.13\.0", text)
    assert 'pip install ".[mysql,s3]"' in text
    assert "FROM python:3.11-slim-bookworm" in text
    for package in ("default-libmysqlclient-dev", "pkg-config", "build-essential", "libmariadb3"):
        assert package in text
    for setting in (
        "FSML_HOME=/data",
        "DJANGO_SETTINGS_MODULE=fsml.settings.production",
        "PYTHONUNBUFFERED=1",
    ):
        assert setting in text
    assert re.search(r"^WORKDIR /app$", text, re.MULTILINE)
    assert re.search(r"^EXPOSE 8000$", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    for pattern in (
        ".venv",
        ".git",
        ".fsml",
        ".env",
        "tests/artifacts",
        "**/__pycache__",
        "**/*.egg-info",
        "**/node_modules",
    ):
        assert pattern in patterns
    assert "README.md" not in patterns and "pyproject.toml" not in patterns  # `pip install .` needs them


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
    from serving.services import submit_job
    from tests.system.test_serving import wait_done

    services = load_compose()["services"]
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "fsml.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(50),
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
