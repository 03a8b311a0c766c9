"""How the API reads JSON bodies: one parser for every endpoint (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``),
instead of a check in every view. Its own module: DRF imports it while ``rest_framework.views`` loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 64  # arrays and objects inside one another; no API body needs more (a span list is 3)


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing with 400 what the database or the parser itself would turn into a 500.

    Every JSON endpoint reads its body through this one parser (``DEFAULT_PARSER_CLASSES``): arrays and objects
    nested deeper than ``MAX_JSON_DEPTH`` (Python's parser raises RecursionError near 1,000 levels) and strings
    with a lone UTF-16 surrogate such as ``"\\ud800"`` (no UTF-8 text holds one; MariaDB's JSON and text
    columns refuse it).
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        if reason := json_problem(data):
            raise ParseError(f"JSON parse error - {reason}")
        return data


def json_problem(data: Any) -> str:
    """Why a parsed JSON value cannot be taken (too deep, a lone surrogate), or "" when it can."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:  # a loop, not recursion: the check must not fail on what it checks
        value, depth = stack.pop()
        if isinstance(value, str):
            if not _is_utf8(value):
                return "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"
        elif isinstance(value, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                return f"nested deeper than {MAX_JSON_DEPTH} levels"
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                stack.extend((item, depth + 1) for item in value.values())
            else:
                stack.extend((item, depth + 1) for item in value)
    return ""


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
