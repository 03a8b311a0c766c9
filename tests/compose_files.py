"""The deployment's files (docker-compose.yml, .env.example) read as the tests of the Docker deployment read them,
and the ``fsml`` command lines they hold parsed by the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from deploy.cli import app

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = (
    "SECRET_KEY",
    "MYSQL_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "FSML_METRICS_TOKEN",
)


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
    """docker-compose.yml as written (variables not filled in)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def parse_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse ``fsml ARGS`` with the real CLI (without running it): the subcommand and its options."""
    assert args[0] == "fsml", args
    group = typer.main.get_command(app)  # a click-style group (typer may bundle its own click)
    command = getattr(group, "commands", {}).get(args[1])
    assert command is not None, f"fsml has no subcommand {args[1]!r}"
    with command.make_context(args[1], list(args[2:])) as ctx:  # raises on an unknown option
        return args[1], dict(ctx.params)


def healthcheck_shell(service: str) -> str:
    """The shell line a service's ``CMD-SHELL`` health check runs in its container: compose turns ``$$`` into ``$``
    and hands the rest to ``/bin/sh -c``."""
    test = load_compose()["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL" and len(test) == 2, f"{service}'s health check is not one shell line: {test}"
    assert "${" not in test[1].replace("$${", ""), "a variable compose would fill in from .env"
    return test[1].replace("$$", "$")
