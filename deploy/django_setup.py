"""Start Django for command-line use (the web and worker processes start it themselves).

The ``fsml`` commands import this module only when they need Django, so importing Django here costs
``fsml --help`` nothing.
"""

from __future__ import annotations

import os

import django
from django.apps import apps
from django.conf import settings
from django.core.management import call_command


def setup(migrate: bool = False) -> None:
    """Configure Django from DJANGO_SETTINGS_MODULE (default: local settings) and optionally migrate."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    if not settings.configured or not apps.ready:
        django.setup()
    settings.FSML_HOME.mkdir(parents=True, exist_ok=True)
    if migrate:
        call_command("migrate", verbosity=0, interactive=False)
