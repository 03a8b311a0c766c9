from __future__ import annotations

from django.apps import AppConfig


class ServingConfig(AppConfig):
    name = "serving"
