"""``fsml lineage JOB_ID``: where a served prediction came from."""

from __future__ import annotations

import typer

lineage_app = typer.Typer(help="Where a served job's model and data came from.", no_args_is_help=True)
