"""Imports that an API request or the manager page hands over: small ones run at once, large ones (more than
``LARGE_IMPORT`` records or files) as a background ``ProjectJob`` of kind ``import`` on the ``projects`` queue.

Labelled images come as one zip archive (an ImageFolder tree, or a CSV or Label Studio JSON with the image files).
Before a job is queued the archive is checked and its manifest parsed, so a malformed archive, a missing file or
a label the project does not have is refused in the response; the job reads, decodes and stores the files and
writes the tasks in one transaction. The uploaded file is kept under ``FSML_HOME/files/imports/`` until its job
ends, so the workers must share ``FSML_HOME`` with the web process.
"""

from __future__ import annotations

import shutil
import uuid
import zipfile
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from annotation import formats, image_formats, services
from annotation.background import Report, runs, start
from annotation.services.access import AnnotationError, Role, require_role
from datastore.models import Project, ProjectJob

LARGE_IMPORT = 2_000  # records or files: more go to a background job


def is_archive(upload: IO[bytes]) -> bool:
    """Whether an uploaded file is a zip archive (read from its first bytes; the position is kept)."""
    position = upload.tell()
    try:
        return zipfile.is_zipfile(upload)
    finally:
        upload.seek(position)


def import_archive(project: Project, user: Any, fmt: str, upload: IO[bytes], manifest: str = "") -> dict[str, Any]:
    """Import a zip archive of labelled images now, or queue it when it is large.

    Returns the import's result (``{"files", "tasks_created", ...}``), or ``{"job": ProjectJob}`` for a queued one.
    Raises AnnotationError with the reasons for a malformed archive, before anything is written or queued.
    """
    require_role(project, user, Role.MANAGER)
    bundle = _open(upload)
    try:
        count = services.count_labelled_images(project, user, bundle, fmt, manifest)
        if count <= LARGE_IMPORT:
            return services.import_labelled_images(project, user, bundle, fmt, manifest)
    finally:
        bundle.close()
    saved = _keep(upload, ".zip")
    params = {"what": "images", "format": fmt, "manifest": manifest, "file": str(saved), "files": count}
    return {"job": start(project, ProjectJob.Kind.IMPORT, params, user)}


def import_records_file(project: Project, user: Any, fmt: str, upload: IO[bytes]) -> dict[str, Any]:
    """Import a text records file (``formats.FORMATS``) now, or queue it when it holds many records."""
    require_role(project, user, Role.MANAGER)
    payload = upload.read()
    try:
        count = len(formats.parse(fmt, payload, project.task_type))
    except formats.ImportFormatError as exc:
        raise AnnotationError(str(exc), errors=exc.errors[: formats.MAX_ERRORS]) from None
    if count <= LARGE_IMPORT:
        records, created = services.import_file(project, user, fmt, payload)
        return {"records": records, "tasks_created": created}
    upload.seek(0)
    saved = _keep(upload, f".{formats.EXTENSIONS.get(fmt, 'txt')}")
    params = {"what": "records", "format": fmt, "file": str(saved), "records": count}
    return {"job": start(project, ProjectJob.Kind.IMPORT, params, user)}


def _open(upload: IO[bytes] | Path) -> image_formats.ZipBundle:
    try:
        return image_formats.ZipBundle(upload)
    except formats.ImportFormatError as exc:
        raise AnnotationError(str(exc), errors=exc.errors[: formats.MAX_ERRORS]) from None


def _keep(upload: IO[bytes], suffix: str) -> Path:
    """Copy an upload where the workers read it (Django's temporary upload file goes with the request)."""
    folder = Path(settings.FSML_HOME) / "files" / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    upload.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload, out, 1024 * 1024)
    return path


@runs(ProjectJob.Kind.IMPORT)
def run_import(job: ProjectJob, report: Report) -> dict[str, Any]:
    """Run a queued import (a worker calls this through ``annotation.background.run``). Its uploaded file is
    removed when the job ends, whether it succeeded or failed."""
    params = job.params
    path = Path(params["file"])
    try:
        if job.created_by is None:
            raise AnnotationError("the account that started this import no longer exists; nothing imported")
        if not path.is_file():
            raise AnnotationError(f"the uploaded file {path.name} is gone; upload it again")
        if params["what"] == "images":
            bundle = _open(path)
            try:
                return services.import_labelled_images(
                    job.project, job.created_by, bundle, params["format"], params.get("manifest", ""), report
                )
            finally:
                bundle.close()
        report(0, params.get("records"))
        records, created = services.import_file(job.project, job.created_by, params["format"], path.read_bytes())
        report(records, records)
        return {"records": records, "tasks_created": created}
    finally:
        path.unlink(missing_ok=True)
