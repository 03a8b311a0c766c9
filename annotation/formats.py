"""Import and export formats: Label Studio JSON, doccano JSONL, CoNLL (spans) and CSV. Pure code.

Parsers return records ``{"text", "value", "prediction"}`` (value and prediction may be None) or raise
ImportFormatError listing every bad line, so an import is all or nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

FORMATS = ("labelstudio", "doccano", "conll", "csv")
EXTENSIONS = {"labelstudio": "json", "doccano": "jsonl", "conll": "conll", "csv": "csv"}  # of exported files
MAX_ERRORS = 20


class ImportFormatError(ValueError):
    """A malformed import file; ``errors`` holds (line or record number, reason) pairs."""

    def __init__(self, fmt: str, errors: list[tuple[int, str]]) -> None:
        shown = "; ".join(f"{where}: {why}" for where, why in errors[:MAX_ERRORS])
        super().__init__(f"{fmt}: {len(errors)} problem(s): {shown}")
        self.errors = errors


def parse(fmt: str, payload: bytes, task_type: str) -> list[dict[str, Any]]:
    parsers: dict[str, Callable[[str, str], list[dict[str, Any]]]] = {
        "labelstudio": _parse_labelstudio,
        "doccano": _parse_doccano,
        "conll": _parse_conll,
        "csv": _parse_csv,
    }
    if fmt not in parsers:
        raise ImportFormatError(fmt, [(0, f"unknown format; choose one of {', '.join(FORMATS)}")])
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(fmt, [(0, f"not UTF-8 ({exc.reason} at byte {exc.start})")]) from None
    try:
        records = parsers[fmt](text, task_type)
    except ImportFormatError:
        raise
    except (RecursionError, csv.Error, AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise ImportFormatError(fmt, [(0, f"unreadable: {type(exc).__name__}: {exc}"[:300])]) from None
    if not records:
        raise ImportFormatError(fmt, [(0, "no records")])
    return records


def _ls_value(results: list[dict[str, Any]], task_type: str) -> Any:
    if task_type == "spans":
        return [
            {"start": r["value"]["start"], "end": r["value"]["end"], "label": r["value"]["labels"][0]}
            for r in results
            if r.get("type") == "labels"
        ]
    choices = [c for r in results if r.get("type") == "choices" for c in r["value"]["choices"]]
    if task_type == "multi_label":
        return choices
    return choices[0] if choices else None


def _parse_labelstudio(text: str, task_type: str) -> list[dict[str, Any]]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError("labelstudio", [(exc.lineno, f"invalid JSON: {exc.msg}")]) from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    records, errors = [], []
    for n, task in enumerate(tasks if isinstance(tasks, list) else [], start=1):
        try:
            body = task["data"]["text"]
            if not isinstance(body, str):
                raise TypeError("data.text must be a string")
            # A ground-truth annotation (how fsml exports adjudicated labels) wins over the others.
            anns = sorted(task.get("annotations") or [], key=lambda a: not a.get("ground_truth"))
            preds = task.get("predictions") or []
            value = _ls_value(anns[0]["result"], task_type) if anns else None
            prediction = _ls_value(preds[0]["result"], task_type) if preds else None
            records.append({"text": body, "value": value, "prediction": prediction})
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            errors.append((n, f"task {n}: {type(exc).__name__}: {exc}"))
    if not isinstance(tasks, list):
        errors.append((1, "expected a list of tasks"))
    if errors:
        raise ImportFormatError("labelstudio", errors)
    return records


def _parse_doccano(text: str, task_type: str) -> list[dict[str, Any]]:
    records, errors = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            body = row["text"]
            if not isinstance(body, str):
                raise TypeError("text must be a string")
            labels = row.get("label", row.get("labels"))
            value: Any = None
            if labels is not None:
                if task_type == "spans":
                    value = [{"start": int(s), "end": int(e), "label": str(lab)} for s, e, lab in labels]
                elif task_type == "multi_label":
                    value = list(labels)
                else:
                    value = labels[0] if isinstance(labels, list) and labels else labels or None
            records.append({"text": body, "value": value, "prediction": None})
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            errors.append((n, f"{type(exc).__name__}: {exc}"))
    if errors:
        raise ImportFormatError("doccano", errors)
    return records


def _parse_conll(text: str, task_type: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    errors: list[tuple[int, str]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def flush() -> None:
        if tokens:
            records.append(spans_from_bio(tokens, tags))
            tokens.clear()
            tags.clear()

    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("-DOCSTART-"):
            flush()
            continue
        parts = line.split()
        if len(parts) < 2 or not re.fullmatch(r"O|[BI]-\S+", parts[-1]):
            errors.append((n, f"expected 'token ... TAG' with a BIO tag, got {line[:60]!r}"))
            continue
        tokens.append(parts[0])
        tags.append(parts[-1])
    flush()
    if errors:
        raise ImportFormatError("conll", errors)
    return records


def spans_from_bio(tokens: list[str], tags: list[str]) -> dict[str, Any]:
    """Join tokens with single spaces and turn BIO tags into character spans."""
    spans: list[dict[str, Any]] = []
    offset = 0
    for token, tag in zip(tokens, tags, strict=True):
        start, end = offset, offset + len(token)
        if tag.startswith("B-") or (
            tag.startswith("I-") and (not spans or spans[-1]["label"] != tag[2:] or spans[-1]["end"] != start - 1)
        ):
            spans.append({"start": start, "end": end, "label": tag[2:]})
        elif tag.startswith("I-"):
            spans[-1]["end"] = end
        offset = end + 1
    return {"text": " ".join(tokens), "value": spans, "prediction": None}


def _parse_csv(text: str, task_type: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "text" not in reader.fieldnames:
        raise ImportFormatError("csv", [(1, "the header needs a 'text' column (and optionally 'label')")])
    records, errors = [], []
    for n, row in enumerate(reader, start=2):
        body = row.get("text")
        if body is None or None in row:
            errors.append((n, "wrong number of columns"))
            continue
        label = (row.get("label") or "").strip()
        value: Any = None
        if label:
            value = label.split("|") if task_type == "multi_label" else label
        if task_type == "spans" and label:
            errors.append((n, "CSV carries no spans; import span labels as CoNLL, doccano or Label Studio"))
        records.append({"text": body, "value": value, "prediction": None})
    if errors:
        raise ImportFormatError("csv", errors)
    return records


def export(fmt: str, task_type: str, rows: list[dict[str, Any]]) -> tuple[bytes, str]:
    """Serialise rows ``{"id", "text", "label", "annotations": [{"annotator", "value"}]}``.

    Rows of image tasks also carry ``file_name``, ``content_hash`` and ``image`` (the file's path inside an
    export folder, ``images/<hash><suffix>``): every format names the image. Returns (payload, content type).
    """
    if task_type == "image_classification" and fmt == "conll":
        raise ImportFormatError("conll", [(0, "CoNLL export is for span projects")])
    if fmt == "labelstudio":
        out = [
            {
                "id": r["id"],
                "data": _ls_data(r),
                "annotations": (
                    [{"completed_by": "adjudicated", "ground_truth": True, "result": _ls_result(task_type, r["final"])}]
                    if r.get("final") is not None
                    else []
                )
                + [
                    {"completed_by": a["annotator"], "result": _ls_result(task_type, a["value"])}
                    for a in r["annotations"]
                ],
            }
            for r in rows
        ]
        if task_type == "image_classification":  # Label Studio's image tag reads data.image
            for task in out:
                for ann in task["annotations"]:
                    for result in ann["result"]:
                        result["to_name"] = "image"
        return json.dumps(out, ensure_ascii=False, indent=1).encode(), "application/json"
    if fmt == "doccano":
        lines = []
        for r in rows:
            label = r["label"]
            if task_type == "spans":
                label = [[s["start"], s["end"], s["label"]] for s in label or []]
            elif task_type != "multi_label" and label is not None:
                label = [label]
            line = {"id": r["id"], "text": r["text"], "label": label or []}
            line.update({k: r[k] for k in IMAGE_KEYS if k in r})
            lines.append(json.dumps(line, ensure_ascii=False))
        return ("\n".join(lines) + "\n").encode(), "application/jsonl"
    if fmt == "conll":
        if task_type != "spans":
            raise ImportFormatError("conll", [(0, "CoNLL export is for span projects")])
        blocks = ["\n".join(f"{tok}\t{tag}" for tok, tag in bio_tags(r["text"], r["label"] or [])) for r in rows]
        return ("\n\n".join(blocks) + "\n").encode(), "text/plain"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        images = task_type == "image_classification"
        writer.writerow(
            ["id", *IMAGE_KEYS, "label", "split", "annotations"] if images else ["id", "text", "label", "annotations"]
        )
        for r in rows:
            label = "|".join(r["label"]) if isinstance(r["label"], list) else (r["label"] or "")
            if images:
                named = [r.get(k, "") for k in IMAGE_KEYS]
                writer.writerow([r["id"], *named, label, r.get("split", ""), len(r["annotations"])])
            else:
                writer.writerow([r["id"], r["text"], label, len(r["annotations"])])
        return buf.getvalue().encode(), "text/csv"
    raise ImportFormatError(fmt, [(0, f"unknown format; choose one of {', '.join(FORMATS)}")])


IMAGE_KEYS = ("file_name", "content_hash", "image")


def _ls_data(row: dict[str, Any]) -> dict[str, Any]:
    if "image" not in row:
        return {"text": row["text"]}
    return {"image": row["image"], "file_name": row["file_name"], "content_hash": row["content_hash"]}


def write_archive(out: BinaryIO, fmt: str, task_type: str, rows: list[dict[str, Any]]) -> int:
    """A zip of the export file (``tasks.<ext>``) and each row's image at its ``image`` path; returns the number
    of images written. Rows of image tasks carry ``image_file``, the stored file to copy.

    Raises:
        OSError: a stored image cannot be read.
    """
    payload, _ = export(fmt, task_type, rows)
    written = set()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"tasks.{EXTENSIONS[fmt]}", payload)
        for r in rows:
            if "image_file" in r and r["image"] not in written:
                written.add(r["image"])
                # Images are compressed already: stored as they are.
                archive.write(r["image_file"], r["image"], compress_type=zipfile.ZIP_STORED)
    return len(written)


def _ls_result(task_type: str, value: Any) -> list[dict[str, Any]]:
    if task_type == "spans":
        return [
            {
                "type": "labels",
                "from_name": "label",
                "to_name": "text",
                "value": {"start": s["start"], "end": s["end"], "labels": [s["label"]]},
            }
            for s in value
        ]
    choices = value if isinstance(value, list) else [value]
    return [{"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": choices}}]


def bio_tags(text: str, spans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Whitespace tokens of ``text`` with BIO tags from character spans."""
    out = []
    for match in re.finditer(r"\S+", text):
        tag = "O"
        for span in spans:
            if span["start"] <= match.start() < span["end"]:
                tag = ("B-" if match.start() <= span["start"] else "I-") + span["label"]
                break
        out.append((match.group(), tag))
    return out
