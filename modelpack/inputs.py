"""What a model accepts, checked before it runs: the rules the job API applies at submit and the runtime
applies again before it encodes."""

from __future__ import annotations

from typing import Any

MAX_TEXT_CHARS = 20_000
MAX_IMAGE_BYTES = 10 * 1024 * 1024


class InputError(ValueError):
    """Inputs a model cannot take; carries the index of the offending input and the reason."""

    def __init__(self, index: int | None, reason: str) -> None:
        where = f"input {index}: " if index is not None else ""
        super().__init__(f"{where}{reason}")
        self.index = index
        self.reason = reason


def check_text(text: Any, index: int | None = None) -> str:
    """A text the text models accept: a non-empty string of at most MAX_TEXT_CHARS characters."""
    if not isinstance(text, str):
        raise InputError(index, f"expected a non-empty string, got {type(text).__name__}")
    if not text.strip():
        raise InputError(index, "expected a non-empty string, got an empty text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(index, f"text longer than {MAX_TEXT_CHARS} characters")
    return text
