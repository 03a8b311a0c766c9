"""Labelled images in: a folder or a zip archive holding the image files, laid out as torchvision's ImageFolder
(``<class>/<file>``, optionally under ``train/``, ``val/``, ``test/``), or with a CSV of file names and labels,
or with a Label Studio JSON export. Pure code: no Django, no database.

A ``Bundle`` lists the files (relative POSIX paths) and reads one at a time, so an import of 70,000 images
never holds them all in memory. Parsers return ``ImageRecord`` rows naming a bundle file, or raise
``ImportFormatError`` listing every bad line, so an import is all or nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from annotation.formats import ImportFormatError
from datastore.splits import SPLITS, SplitError, fixed_split

IMAGE_IMPORT_FORMATS = ("imagefolder", "csv", "labelstudio")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MANIFEST_SUFFIX = {"csv": ".csv", "labelstudio": ".json"}

# Limits on an uploaded archive: its members are read one by one into memory, never extracted to disk.
MAX_ARCHIVE_BYTES = 4 * 1024**3  # the upload itself
MAX_MEMBERS = 250_000
MAX_MEMBER_BYTES = 64 * 1024**2  # one image or the manifest, uncompressed
MAX_TOTAL_BYTES = 16 * 1024**3  # all members, uncompressed
MAX_RATIO = 200  # uncompressed / compressed, for members over 1 MiB: more is a decompression bomb

# What archivers add that is no part of a data set (macOS resource forks, Finder and Explorer files).
IGNORED = re.compile(r"(^|/)(__MACOSX|\.[^/]*|Thumbs\.db|desktop\.ini)(/|$)")
# Label Studio stores an uploaded file as ``<8 hex>-<original name>``.
LS_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


@dataclass
class ImageRecord:
    """One labelled (or unlabelled) image of an import: the bundle file, its label, suggestion and split."""

    file: str
    value: Any = None
    prediction: Any = None
    split: str = ""
    where: str = ""  # "line 12", "task 3", "train/cat/1.png": for messages

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.file).name


class Bundle(Protocol):
    """Files of an import, by relative POSIX path."""

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...


class FolderBundle:
    """The files under a folder on disk (the command line's import)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ImportFormatError("images", [(0, f"{root} is not a folder")])
        self.root = root
        found = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            rel = Path(folder).relative_to(root).as_posix()
            for name in sorted(files):
                path = name if rel == "." else f"{rel}/{name}"
                if not IGNORED.search(path):
                    found.append(path)
        self._names = found

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()


class ZipBundle:
    """The members of a zip archive, checked before any is read: no absolute or ``..`` paths, no links, no
    member or total size over the limits, no member that inflates more than ``MAX_RATIO`` times."""

    def __init__(self, source: str | Path | IO[bytes]) -> None:
        try:
            self.zip = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise ImportFormatError("zip", [(0, f"not a zip archive ({exc})")]) from None
        infos = [i for i in self.zip.infolist() if not i.is_dir()]
        errors = []
        if len(infos) > MAX_MEMBERS:
            errors.append((0, f"{len(infos)} files; at most {MAX_MEMBERS} per archive"))
        total = 0
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name).parts
            if name.startswith(("/", "\\")) or "\\" in name or ".." in parts or re.match(r"^[A-Za-z]:", name):
                errors.append((0, f"{name!r}: a path outside the archive (absolute, '..' or a drive) is refused"))
            elif stat.S_ISLNK(info.external_attr >> 16):
                errors.append((0, f"{name!r}: symbolic links are refused"))
            elif info.file_size > MAX_MEMBER_BYTES:
                errors.append((0, f"{name!r}: {info.file_size} bytes uncompressed, over {MAX_MEMBER_BYTES}"))
            elif info.file_size > 1024**2 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                errors.append((0, f"{name!r}: inflates {info.file_size // max(info.compress_size, 1)} times"))
            total += info.file_size
        if total > MAX_TOTAL_BYTES:
            errors.append((0, f"{total} bytes uncompressed in all, over {MAX_TOTAL_BYTES}"))
        if errors:
            self.zip.close()
            raise ImportFormatError("zip", errors)
        self._names = sorted(i.filename for i in infos if not IGNORED.search(i.filename))

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> bytes:
        # The member's declared size bounds what is read (zipfile stops there and checks the CRC).
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ImportFormatError("zip", [(0, f"{name!r}: unreadable ({exc})")]) from None

    def close(self) -> None:
        self.zip.close()


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def parse_images(fmt: str, bundle: Bundle, manifest: str = "") -> list[ImageRecord]:
    """The labelled images a bundle holds in format ``fmt`` (``imagefolder``, ``csv`` or ``labelstudio``).

    ``manifest`` names the CSV or JSON file inside the bundle; without it the one such file at the top is used.
    """
    if fmt == "imagefolder":
        records = _parse_imagefolder(bundle.names())
    elif fmt in MANIFEST_SUFFIX:
        name = manifest or _find_manifest(fmt, bundle.names())
        if name not in bundle.names():
            raise ImportFormatError(fmt, [(0, f"the archive holds no file {name!r}")])
        try:
            text = bundle.read(name).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFormatError(fmt, [(0, f"{name}: not UTF-8 ({exc.reason} at byte {exc.start})")]) from None
        images = [n for n in bundle.names() if is_image_name(n)]
        parser = _parse_csv if fmt == "csv" else _parse_labelstudio
        try:
            records = parser(text, FileIndex(images))
        except ImportFormatError:
            raise
        except (RecursionError, csv.Error, AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            raise ImportFormatError(fmt, [(0, f"unreadable: {type(exc).__name__}: {exc}"[:300])]) from None
    else:
        choices = ", ".join(IMAGE_IMPORT_FORMATS)
        raise ImportFormatError(fmt, [(0, f"unknown image import format; choose one of {choices}")])
    if not records:
        raise ImportFormatError(fmt, [(0, "no images")])
    return records


def _find_manifest(fmt: str, names: list[str]) -> str:
    suffix = MANIFEST_SUFFIX[fmt]
    top = [n for n in names if n.lower().endswith(suffix) and "/" not in n]
    candidates = top or [n for n in names if n.lower().endswith(suffix)]
    if len(candidates) != 1:
        found = f"{len(candidates)} {suffix} files ({', '.join(candidates[:5])})" if candidates else f"no {suffix} file"
        raise ImportFormatError(fmt, [(0, f"the archive needs one {suffix} file with the labels; it has {found}")])
    return candidates[0]


def _parse_imagefolder(names: list[str]) -> list[ImageRecord]:
    """``<class>/<file>``, or ``<split>/<class>/<file>`` when every top folder is train, val or test."""
    files = [n for n in names if "/" in n]  # files at the top (a README, a licence) belong to no class
    tops = {n.split("/", 1)[0] for n in files}
    split_layout = bool(tops) and tops <= set(SPLITS)
    records, errors = [], []
    for name in files:
        parts = name.split("/")
        depth = 3 if split_layout else 2
        if len(parts) != depth:
            layout = "<split>/<class>/<file>" if split_layout else "<class>/<file>"
            errors.append((0, f"{name}: expected {layout}"))
            continue
        if not is_image_name(name):
            errors.append((0, f"{name}: not an image file ({', '.join(IMAGE_SUFFIXES)})"))
            continue
        split, label = (parts[0], parts[1]) if split_layout else ("", parts[0])
        records.append(ImageRecord(name, value=label, split=split, where=name))
    if errors:
        raise ImportFormatError("imagefolder", errors)
    return records


class FileIndex:
    """Finds the bundle file a manifest names: the exact relative path, else a unique base name."""

    def __init__(self, names: list[str]) -> None:
        self.exact = set(names)
        self.by_base: dict[str, list[str]] = {}
        for name in names:
            self.by_base.setdefault(PurePosixPath(name).name, []).append(name)

    def find(self, named: str) -> str:
        """The file for ``named`` (a name, a relative path, or a URL path as ``/data/upload/1/x.png``).

        Raises:
            ValueError: no file or several files match.
        """
        named = named.strip().split("?", 1)[0]
        if named.lstrip("./") in self.exact:
            return named.lstrip("./")
        base = PurePosixPath(named).name
        found = self.by_base.get(base) or self.by_base.get(LS_UPLOAD_PREFIX.sub("", base), [])
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(f"{named!r} matches {len(found)} files ({', '.join(found[:3])}); name it by its path")
        raise ValueError(f"no image file {named!r} in the archive or folder")


def _split(value: Any, errors: list[tuple[int, str]], n: int) -> str:
    try:
        return fixed_split(str(value or ""))
    except SplitError as exc:
        errors.append((n, exc.reason))
        return ""


def _parse_csv(text: str, index: FileIndex) -> list[ImageRecord]:
    reader = csv.DictReader(io.StringIO(text))
    fields = reader.fieldnames or []
    column = (
        "image" if "image" in fields else "file" if "file" in fields else "file_name" if "file_name" in fields else ""
    )
    if not column:
        raise ImportFormatError("csv", [(1, "the header needs an 'image' or 'file' column (and 'label', 'split')")])
    records, errors = [], []
    for n, row in enumerate(reader, start=2):
        if None in row or row.get(column) is None:
            errors.append((n, "wrong number of columns"))
            continue
        try:
            file = index.find(row[column])
        except ValueError as exc:
            errors.append((n, str(exc)))
            continue
        label = (row.get("label") or "").strip() or None
        records.append(ImageRecord(file, value=label, split=_split(row.get("split"), errors, n), where=f"line {n}"))
    if errors:
        raise ImportFormatError("csv", errors)
    return records


def _choice(results: list[dict[str, Any]]) -> Any:
    choices = [c for r in results if r.get("type") == "choices" for c in r["value"]["choices"]]
    return choices[0] if choices else None


def _parse_labelstudio(text: str, index: FileIndex) -> list[ImageRecord]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFormatError("labelstudio", [(exc.lineno, f"invalid JSON: {exc.msg}")]) from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ImportFormatError("labelstudio", [(1, "expected a list of tasks")])
    records, errors = [], []
    for n, task in enumerate(tasks, start=1):
        try:
            image = task["data"]["image"]
            if not isinstance(image, str):
                raise TypeError("data.image must be a string")
            # A ground-truth annotation (how fsml exports adjudicated labels) wins; cancelled ones count for none.
            anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
            anns.sort(key=lambda a: not a.get("ground_truth"))
            preds = task.get("predictions") or []
            value = _choice(anns[0]["result"]) if anns else None
            prediction = _choice(preds[0]["result"]) if preds else None
            file = index.find(image)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            errors.append((n, f"task {n}: {type(exc).__name__}: {exc}"))
            continue
        except ValueError as exc:
            errors.append((n, f"task {n}: {exc}"))
            continue
        split = _split(task["data"].get("split"), errors, n)
        records.append(ImageRecord(file, value=value, prediction=prediction, split=split, where=f"task {n}"))
    if errors:
        raise ImportFormatError("labelstudio", errors)
    return records
