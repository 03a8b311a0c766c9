"""The import parsers and the BIO conversion (annotation.formats): Label Studio JSON, doccano JSONL, CoNLL and CSV,
and the malformed or hostile files each refuses with a reason."""

from __future__ import annotations

import pytest

from annotation import formats
from tests.annotation_helpers import LS


def test_parsers_read_each_format() -> None:
    assert formats.parse("labelstudio", LS, "text_classification") == [
        {"text": "great flight", "value": "pos", "prediction": None},
        {"text": "lost my bag", "value": None, "prediction": "neg"},
        {"text": "no label yet", "value": None, "prediction": None},
    ]
    doccano = b'{"text": "Ada met Bob", "label": [[0, 3, "PER"], [8, 11, "PER"]]}\n'
    assert formats.parse("doccano", doccano, "spans")[0]["value"] == [
        {"start": 0, "end": 3, "label": "PER"},
        {"start": 8, "end": 11, "label": "PER"},
    ]
    conll = b"Ada\tB-PER\nLovelace\tI-PER\nwrote\tO\n\nIBM\tB-ORG\n"
    parsed = formats.parse("conll", conll, "spans")
    assert parsed[0] == {
        "text": "Ada Lovelace wrote",
        "value": [{"start": 0, "end": 12, "label": "PER"}],
        "prediction": None,
    }
    assert parsed[1]["value"] == [{"start": 0, "end": 3, "label": "ORG"}]
    csv_rows = formats.parse("csv", b"text,label\nhello,a|b\nbye,\n", "multi_label")
    assert [r["value"] for r in csv_rows] == [["a", "b"], None]


@pytest.mark.parametrize(
    ("fmt", "payload", "needle"),
    [
        ("labelstudio", b"[{", "invalid JSON"),
        ("labelstudio", b'[{"data": {}}]', "KeyError"),
        ("doccano", b'{"text": "ok"}\nnot json\n', "2: JSONDecodeError"),
        ("conll", b"token-without-tag\n", "BIO tag"),
        ("csv", b"body,label\nx,y\n", "'text' column"),
        ("csv", b"\xff\xfe\x00bad", "not UTF-8"),
        ("yaml", b"x", "unknown format"),
    ],
)
def test_malformed_files_are_refused_with_reasons(fmt: str, payload: bytes, needle: str) -> None:
    with pytest.raises(formats.ImportFormatError, match=needle):
        formats.parse(fmt, payload, "text_classification")


def test_bio_round_trip() -> None:
    spans = [{"start": 0, "end": 12, "label": "PER"}]
    assert formats.bio_tags("Ada Lovelace wrote", spans) == [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("wrote", "O")]


@pytest.mark.parametrize(
    "payload",
    [
        b'[{"data": {"text": "x"}, "annotations": [{"result": ["not an object"]}]}]',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_hostile_label_studio_files_are_refused_cleanly(payload: bytes) -> None:
    with pytest.raises(formats.ImportFormatError):
        formats.parse("labelstudio", payload, "text_classification")
