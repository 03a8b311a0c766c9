from __future__ import annotations

from django.apps import AppConfig


class DatastoreConfig(AppConfig):
    name = "datastore"
    verbose_name = "Data store"
