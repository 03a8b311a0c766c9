"""What every ``fsml`` subcommand shares: Django start-up, clean failures, the data repository option."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from deploy.console import console
from deploy.logs import setup_logging


def start_django() -> None:
    """Django on the configured database, migrated; the CLI's logging kept (Django's LOGGING replaces it)."""
    from deploy.django_setup import setup  # local: it imports Django, which `fsml --help` need not load

    setup(migrate=True)
    setup_logging()


def fail(message: str) -> NoReturn:
    """Print the reason and exit with status 2 (no traceback: the reason is the message)."""
    console.print(f"[red]error:[/red] {escape(message)}")  # a reason may hold brackets: "[staging]" is text
    raise typer.Exit(code=2)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
MODEL_REF_HELP = (
    "A model: NAME (its latest version), NAME:VERSION (e.g. sentiment:3) or NAME@ALIAS (e.g. sentiment@production)."
)

RepoOption = Annotated[
    str, typer.Option("--repo", help="Data repository path or git URL (default: FSML_HOME/data); no database needed.")
]


def repo_or_default(repo: str) -> str:
    """The data repository to read: the one given, else the configured one (settings only, no database)."""
    if repo:
        return repo
    # local: Django loads only when no repository is given, and its settings only once it is set up
    from deploy.django_setup import setup

    setup(migrate=False)
    setup_logging()
    from django.conf import settings

    return str(settings.DVC_REPO_DIR)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a small JSON result (metrics, version info) for pipelines to read, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
