"""Check a submitted label against its project's schema. Pure functions: no database."""

from __future__ import annotations

from typing import Any


class InvalidLabel(ValueError):
    """A label that does not fit the schema; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_value(
    task_type: str, labels: list[str], value: Any, text: str = "", allow_overlapping_spans: bool = False
) -> Any:
    """Return the canonical form of ``value`` for the task type, or raise InvalidLabel.

    text_classification / image_classification: one label name.
    multi_label: a list of distinct label names (sorted), possibly empty.
    spans: a list of {"start", "end", "label"} with 0 <= start < end <= len(text), sorted by position.
    """
    if task_type in ("text_classification", "image_classification"):
        if not isinstance(value, str) or value not in labels:
            raise InvalidLabel(f"label {value!r} is not in the project's schema {labels}")
        return value
    if task_type == "multi_label":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidLabel("a multi-label answer is a list of label names")
        unknown = sorted(set(value) - set(labels))
        if unknown:
            raise InvalidLabel(f"labels {unknown} are not in the project's schema {labels}")
        return sorted(set(value))
    if task_type == "spans":
        return _clean_spans(labels, value, text, allow_overlapping_spans)
    raise InvalidLabel(f"unknown task type {task_type!r}")


def _clean_spans(labels: list[str], value: Any, text: str, allow_overlap: bool) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidLabel("a span answer is a list of {start, end, label} objects")
    spans = []
    for i, span in enumerate(value):
        if not isinstance(span, dict) or set(span) - {"start", "end", "label", "text"}:
            raise InvalidLabel(f"span {i}: expected an object with start, end and label")
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not isinstance(start, int) or not isinstance(end, int) or isinstance(start, bool) or isinstance(end, bool):
            raise InvalidLabel(f"span {i}: start and end must be integers")
        if not 0 <= start < end <= len(text):
            raise InvalidLabel(f"span {i}: [{start}, {end}) is outside the text (length {len(text)})")
        if label not in labels:
            raise InvalidLabel(f"span {i}: label {label!r} is not in the project's schema {labels}")
        spans.append({"start": start, "end": end, "label": label})
    spans.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    if len({(s["start"], s["end"], s["label"]) for s in spans}) != len(spans):
        raise InvalidLabel("the same span is given twice")
    if not allow_overlap:
        for before, after in zip(spans, spans[1:], strict=False):
            if after["start"] < before["end"]:
                raise InvalidLabel(
                    f"spans [{before['start']}, {before['end']}) and [{after['start']}, {after['end']}) overlap,"
                    " which this project does not allow"
                )
    return spans


def distinct_names(labels: Any) -> bool:
    """A label schema: a non-empty list of distinct, non-empty names."""
    return (
        isinstance(labels, list)
        and bool(labels)
        and len(set(labels)) == len(labels)
        and all(isinstance(label, str) and label for label in labels)
    )


# The labelling page's own single keys (annotation/frontend/src/hotkeys.js APP_KEYS lists the same): a label's
# key may not be one of them. Letters are matched without case.
APP_KEYS = {
    "u": "undo",
    "s": "skip",
    "n": "next task",
    "?": "ask a question",
    "f": "fit the image",
    "g": "grid view",
    "+": "zoom in",
    "=": "zoom in",
    "-": "zoom out",
    "j": "move to the next row on the review page",
    "k": "move to the previous row on the review page",
}


def clean_hotkeys(labels: list[str], hotkeys: Any) -> dict[str, str]:
    """A project's own label keys ``{label: key}``, checked against its labels; in label order, letters lower case.

    Labels left out keep their default key (1-9, 0, then letters). Raises InvalidLabel: a label not in the schema,
    a key that is not one printable character, a key of the page itself (undo, skip, zoom…), or one key for two
    labels.
    """
    if hotkeys in (None, ""):
        return {}
    if not isinstance(hotkeys, dict):
        raise InvalidLabel('hotkeys map label names to keys, e.g. {"cat": "c", "dog": "d"}')
    owner: dict[str, str] = {}
    for label, key in hotkeys.items():
        if label not in labels:
            raise InvalidLabel(f"hotkey for {label!r}: there is no such label in the project's schema {labels}")
        if not isinstance(key, str) or len(key) != 1 or key.isspace() or not key.isprintable():
            raise InvalidLabel(f"hotkey of {label!r}: {key!r} is not one key; use one letter, digit or sign")
        key = key.lower()
        if key in APP_KEYS:
            raise InvalidLabel(f"hotkey of {label!r}: {key!r} is the page's key to {APP_KEYS[key]}; choose another")
        if key in owner:
            raise InvalidLabel(f"labels {owner[key]!r} and {label!r} both have the key {key!r}; one key per label")
        owner[key] = label
    keys = {label: key for key, label in owner.items()}
    return {label: keys[label] for label in labels if label in keys}
