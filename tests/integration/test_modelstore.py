"""Packaging into the model store and registering on the real database: an archive whose version could not be
recorded does not stay behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError

from datastore import services
from deploy import stages


def test_an_archive_whose_version_was_not_recorded_is_removed(db, model_archive, settings, tmp_path, monkeypatch):
    """Registration refused after the archive was stored: the archive goes, so the version can be packaged again
    (it would otherwise be refused for good as "already exists")."""
    settings.MODEL_STORE = str(tmp_path / "store")
    export_dir = model_archive[0].parent / "export"

    def refused(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(services, "register_model_version", refused)
        with pytest.raises(DatabaseError, match="went away"):
            stages.package_and_register(export_dir, "flaky", None, {})
    assert not list((tmp_path / "store").rglob("*.tar.gz")), "the unrecorded archive is gone"
    model = stages.package_and_register(export_dir, "flaky", None, {})
    assert model.version == 1 and Path(model.archive_path).is_file()
