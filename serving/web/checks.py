"""What a submit is checked for before anything is stored or queued: the model reference, each job's inputs
against the model's task type, and the callback URL. A request that fails gets a ``JobError``."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models.signals import post_delete, post_save

from datastore.models import ModelAlias, ModelVersion
from datastore.services import ItemError, check_image, registry
from modelpack.inputs import MAX_IMAGE_BYTES, MAX_TEXT_CHARS, InputError, check_text
from serving.jobs import callbacks

TEXT_TASKS = ("text_classification", "multi_label", "spans")


class JobError(Exception):
    """A job request refused before anything was queued; ``status`` is the HTTP status it maps to."""

    def __init__(self, reason: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.status, self.field = reason, status, field


def resolve_model(ref: str) -> ModelVersion:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``; a JobError on the ``model`` field otherwise."""
    try:
        return registry.resolve(ref)
    except registry.RegistryError as exc:
        raise JobError(exc.reason, status=exc.status, field="model") from None


_resolved: dict[str, tuple[float, ModelVersion]] = {}


def resolve_for_submit(ref: str) -> ModelVersion:
    """``resolve_model``, remembered for ``FSML_MODEL_REF_CACHE_SECONDS`` (1) in this process: a submit's
    reference is resolved on every request, and it rarely changes. A registration or an alias move made in this
    process is seen at once, one made elsewhere within that time; workers resolve ``NAME@ALIAS`` again for each
    batch, uncached, so the version that serves a job is always the alias's current one."""
    hit = _resolved.get(ref)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    model = resolve_model(ref)
    if (ttl := settings.FSML_MODEL_REF_CACHE_SECONDS) > 0:
        if len(_resolved) > 1000:
            _resolved.clear()
        _resolved[ref] = (time.monotonic() + ttl, model)
    return model


def forget_resolved(**_: Any) -> None:
    _resolved.clear()


for _sender in (ModelVersion, ModelAlias):
    post_save.connect(forget_resolved, sender=_sender, dispatch_uid=f"fsml-forget-resolved-{_sender.__name__}")
    post_delete.connect(forget_resolved, sender=_sender, dispatch_uid=f"fsml-forget-resolved-del-{_sender.__name__}")


def validate_inputs(model: ModelVersion, inputs: Any, index: int | None = None) -> dict[str, Any]:
    """One job's inputs, checked before anything is queued; ``index`` places it in a batch submit.

    Text models (classification, multi-label, spans) take ``{"text": "..."}``; image models take
    ``{"image": "<base64 of a PNG, JPEG, ... file>"}``, decoded and opened here so a bad file is a 4xx.
    """
    prefix = "inputs" if index is None else f"inputs[{index}]"
    if not isinstance(inputs, dict):
        raise JobError(f"{prefix}: expected an object, got {type(inputs).__name__}", field=prefix)
    if model.task_type in TEXT_TASKS:
        text = inputs.get("text")
        try:
            check_text(text)
        except InputError as exc:
            status = 413 if isinstance(text, str) and len(text) > MAX_TEXT_CHARS else 400
            raise JobError(f"{prefix}.text: {exc.reason}", status=status, field=f"{prefix}.text") from exc
        return {"text": text}
    if model.task_type == "image_classification":
        where = f"{prefix}.image"
        encoded = inputs.get("image")
        if not isinstance(encoded, str) or not encoded:
            raise JobError(f"{where}: expected a base64-encoded image file", field=where)
        if len(encoded) > MAX_IMAGE_BYTES * 4 // 3 + 4:
            raise JobError(f"{where}: image larger than {MAX_IMAGE_BYTES} bytes", status=413, field=where)
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise JobError(f"{where}: not valid base64", field=where) from None
        # Decoded whole now, as an import does (a known format, at most MAX_IMAGE_PIXELS), so a broken or
        # oversized file is a 400 here, not a failed job or a worker out of memory.
        try:
            check_image(where, data)
        except ItemError as exc:
            raise JobError(f"{where}: {exc.reason}", field=where) from None
        return {"image": encoded}
    raise JobError(f"model task type {model.task_type} is not served", status=501)


HTTP_URL = URLValidator(schemes=["http", "https"])


def checked_callback_url(url: str) -> str:
    """The callback URL as it will be called (``callbacks.normalised``), or a JobError when it may not be."""
    if not url:
        return ""
    try:
        HTTP_URL(url)
    except ValidationError:
        raise JobError("callback_url must be an http or https URL", field="callback_url") from None
    try:
        url = callbacks.normalised(url)
    except ValueError as exc:
        raise JobError(str(exc), field="callback_url") from None
    if refusal := callbacks.refusal(url):
        raise JobError(refusal, field="callback_url")
    return url
