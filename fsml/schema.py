"""What the OpenAPI schema says every operation can answer besides its own results.

Each view documents what it returns and the refusals only it gives (a 409, a 422); the answers that come from
the API's shared layers (authentication, permissions, the JSON parser, throttles, a missing record) are added to
every operation here, once, by a drf-spectacular postprocessing hook (``SPECTACULAR_SETTINGS``), so no view can
forget one and none repeats them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from rest_framework import serializers

# JSON Schema's "anything", less null: OpenAPI 3.0 has no type "null" to exclude.
NOT_NULL = {"anyOf": [{"type": kind} for kind in ("object", "array", "string", "number", "boolean")]}
_ANY = {"description", "title", "readOnly", "writeOnly", "default"}  # keys that leave a schema "anything"


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, saying what request fields refuse that it leaves out: a text field holds no NUL character
    and, when it may not be blank, a character other than white space (DRF trims it first); a list that may not be
    empty has an item; a JSON field that may not be null is not null."""

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request":
            return schema
        if isinstance(field, serializers.CharField) and schema.get("type") == "string":
            if not field.allow_blank:
                schema.setdefault("minLength", 1)
            if "pattern" not in schema and "format" not in schema and "enum" not in schema:
                schema["pattern"] = _text_pattern(field)
        if isinstance(field, serializers.ListField) and not field.allow_empty:
            schema.setdefault("minItems", 1)
        if isinstance(field, serializers.JSONField) and not field.allow_null and not set(schema) - _ANY:
            schema.update(NOT_NULL)
        return schema


def _text_pattern(field: serializers.CharField) -> str:
    """What DRF lets through a text field: no NUL character, and, when it may not be blank (after trimming white
    space, by default), a character other than white space."""
    if field.allow_blank:
        return r"^[^\x00]*$"
    if field.trim_whitespace:
        return r"^[^\x00]*[^\s\x00][^\x00]*$"
    return r"^[^\x00]+$"


ERROR_SCHEMA = "Error"
ERROR = {
    "type": "object",
    "description": 'Why the request was refused: {"detail": "..."}, or, when fields of the body are invalid, '
    '{"field": ["what is wrong", ...], ...}.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}

EVERY_OPERATION = {
    "401": "No credentials, or a token or session that is not valid.",
    "403": "Signed in, but not allowed to do this.",
    "429": "Too many requests: retry after the time the Retry-After header gives.",
    "503": "The database or the job queue is unavailable; retry later.",
}
WITH_INPUT = {"400": "The request's parameters or body are not valid (the body says which and why)."}
WITH_BODY = {
    "413": "The request body is larger than the server takes.",
    "415": "The body's Content-Type is not one this operation reads.",
}
WITH_PATH = {"404": "No such record, or one you may not see."}
WRITES = {"409": "The record's state does not allow this now (the body says why)."}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Document the refusals the shared layers give on each operation, with the error body, where the view
    did not document them itself."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA] = ERROR
    error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            added = dict(EVERY_OPERATION)
            if "requestBody" in operation or any(p.get("in") in ("query", "header") for p in parameters):
                added |= WITH_INPUT
            if "requestBody" in operation:
                added |= WITH_BODY
            if any(p.get("in") == "path" for p in parameters):
                added |= WITH_PATH
            if method in ("post", "put", "patch", "delete"):
                added |= WRITES
            responses = operation.setdefault("responses", {})
            for status, description in added.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:  # a refusal the view documented in words
                    response["content"] = error
    return result
