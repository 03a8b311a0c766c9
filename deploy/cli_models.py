"""``fsml model``: the registry's versions and aliases (list, show, promote, rollback); every move is logged."""

from __future__ import annotations

from typing import Annotated

import typer

from deploy.cli_support import JsonOption, fail, start_django
from deploy.console import print_json, print_table, say

model_app = typer.Typer(help="Model versions and their aliases (stages: staging, production).", no_args_is_help=True)


@model_app.command("list")
def model_list(as_json: JsonOption = False) -> None:
    """Every model as a table: its task, versions, latest, and aliases (NAME@ALIAS names the version an alias
    points at). --json prints a list of objects (name, task, versions, latest, aliases)."""
    start_django()
    from datastore.services.registry import models_summary  # local: needs Django, set up just above

    rows = models_summary()
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no models registered yet (fsml package RUN --name NAME)")
        return
    print_table(
        ["name", "task", "versions", "latest", "aliases"],
        [
            [
                row["name"],
                row["task"],
                ", ".join(str(v) for v in row["versions"]),
                row["latest"],
                ", ".join(f"{a}={v}" for a, v in row["aliases"].items()) or "-",
            ]
            for row in rows
        ],
        numeric=("latest",),
    )


@model_app.command("show")
def model_show(name: Annotated[str, typer.Argument(help="Model name (NAME, without :VERSION or @ALIAS).")]) -> None:
    """A model's versions (dataset, test metrics, aliases) and the moves of its aliases, newest first."""
    start_django()
    from datastore.services.registry import RegistryError, model_detail  # local: needs Django, set up just above

    try:
        detail = model_detail(name)
    except RegistryError as exc:
        fail(exc.reason)
    for v in detail["versions"]:
        tags = f" [{', '.join(v['aliases'])}]" if v["aliases"] else ""
        score = v["test_metrics"].get("accuracy")
        shown = f", test accuracy {score:.4f}" if isinstance(score, float) else ""
        say(f"{name}:{v['version']}{tags} from {v['dataset'] or '-'}{shown}, {v['created_at']}")
    for m in detail["moves"]:
        say(f"  {m['at']} {m['alias']}: {m['action']} {m['from']} -> {m['to']} by {m['by']} {m['reason']}")


@model_app.command("promote")
def model_promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to point the alias at.")],
    stage: Annotated[str, typer.Argument(help="Alias: staging, production or any lower-case name.")],
    reason: Annotated[str, typer.Option(help="Why, kept in the log.")] = "",
    user: Annotated[str, typer.Option(help="Site user to record as the mover (default: none, the OS user).")] = "",
) -> None:
    """Point NAME@STAGE at NAME:VERSION; workers serve jobs for NAME@STAGE with it from their next job (a job for
    NAME alone gets the latest version, for NAME:VERSION that version)."""
    _move("promote", name, stage, reason, user, version)


@model_app.command("rollback")
def model_rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    stage: Annotated[str, typer.Argument(help="Alias to move back.")],
    reason: Annotated[str, typer.Option(help="Why, kept in the log.")] = "",
    user: Annotated[str, typer.Option(help="Site user to record as the mover (default: none, the OS user).")] = "",
) -> None:
    """Point NAME@STAGE back at the version it named before its current one was promoted."""
    _move("rollback", name, stage, reason, user)


def _move(action: str, name: str, stage: str, reason: str, username: str, version: int | None = None) -> None:
    start_django()
    # local: these need Django, set up just above
    from django.contrib.auth import get_user_model

    from datastore.services import registry

    mover = None
    if username:
        mover = get_user_model().objects.filter(username=username).first()
        if mover is None:
            fail(f"no site user named {username!r}")
    try:
        if action == "promote":
            move = registry.promote(name, version or 0, stage, mover, reason, via="cli")
        else:
            move = registry.rollback(name, stage, mover, reason, via="cli")
    except registry.RegistryError as exc:
        fail(exc.reason)
    was = f"version {move.from_version.version}" if move.from_version else "nothing"
    say(f"{name}@{stage}: {was} -> version {move.to_version.version} ({action} by {move.actor})")
