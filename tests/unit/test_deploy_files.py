"""The Docker deployment's files, read without Docker: every service has a health check, a restart policy and its
backends; state lives in named volumes; containers run the repository's own commands; no secret is written down;
the image installs what pyproject pins and serves production settings. Compose itself runs them in
tests/system/test_compose.py."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib

from deploy.processes import flower_command, web_command, worker_command
from tests.compose_files import COMPOSE_FILE, ENV_EXAMPLE, ROOT, SECRETS, load_compose, parse_cli, read_env_file

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVICES = {"mysql", "redis", "minio", "web", "worker", "flower", "crawler"}
ON_DEMAND = {"crawler"}  # `docker compose run --rm crawler fsml crawl ...`; not started by `up`


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
    assert flower_command(**params)[1:6] == ["-m", "deploy.flower", "-A", "fsml", "flower"]
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


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """deploy/Dockerfile as its build stages, each a list of (INSTRUCTION, arguments) with continuations joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_the_image_installs_the_torch_pyproject_pins_from_the_cpu_index_and_existing_extras() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (pin,) = [d.split("#")[0].strip() for d in pyproject["project"]["dependencies"] if d.startswith("torch")]
    version = pin.removeprefix("torch==")
    runs = [arguments for instruction, arguments in dockerfile_stages()[0] if instruction == "RUN"]
    assert f"pip install --extra-index-url https://download.pytorch.org/whl/cpu {pin}" in runs, runs
    assert any(f"torch.__version__.startswith('{version}')" in run for run in runs), "the build checks the torch"
    (install,) = [run for run in runs if 'pip install ".[' in run]
    extras = re.search(r'pip install "\.\[([\w,]+)\]"', install)
    assert extras is not None and set(extras.group(1).split(",")) == {"mysql", "s3"}
    assert {"mysql", "s3"} <= set(pyproject["project"]["optional-dependencies"]), "extras pyproject defines"


def test_the_image_serves_production_settings_as_an_unprivileged_user_on_its_exposed_port() -> None:
    runtime = dockerfile_stages()[-1]
    env = dict(pair.split("=", 1) for instruction, args in runtime if instruction == "ENV" for pair in args.split())
    assert env["DJANGO_SETTINGS_MODULE"] == "fsml.settings.production"
    assert importlib.util.find_spec(env["DJANGO_SETTINGS_MODULE"]) is not None
    assert env["FSML_HOME"] == "/data" and "fsml-data:/data" in load_compose()["services"]["web"]["volumes"]
    users = [args for instruction, args in runtime if instruction == "USER"]
    assert users and users[-1] not in {"root", "0"}
    (exposed,) = [int(args) for instruction, args in runtime if instruction == "EXPOSE"]
    (cmd,) = [json.loads(args) for instruction, args in runtime if instruction == "CMD"]
    name, params = parse_cli(cmd)  # the image's own command is a valid fsml command line
    assert (name, params["port"], params["host"]) == ("web", exposed, "0.0.0.0")
    assert parse_cli(load_compose()["services"]["web"]["command"])[1]["port"] == exposed


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
