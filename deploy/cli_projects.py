"""``fsml project ...`` and ``fsml user ...``: projects, their items and members, accounts and tokens."""

from __future__ import annotations

import typer

project_app = typer.Typer(help="Create projects, add crawled items and members.", no_args_is_help=True)
user_app = typer.Typer(help="Create accounts, make admins, issue API tokens.", no_args_is_help=True)
