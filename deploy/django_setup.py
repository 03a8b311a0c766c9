"""Start Django for command-line use (the web and worker processes start it themselves)."""

from __future__ import annotations

import os


def setup(migrate: bool = False) -> None:
    """Configure Django from DJANGO_SETTINGS_MODULE (default: local settings) and optionally migrate."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    import django
    from django.conf import settings

    if not settings.configured or not _apps_ready():
        django.setup()
    settings.FSML_HOME.mkdir(parents=True, exist_ok=True)
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def _apps_ready() -> bool:
    from django.apps import apps

    return apps.ready
