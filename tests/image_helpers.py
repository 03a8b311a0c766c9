"""Test helpers for image data: small real image dataset versions, made without the network."""

from __future__ import annotations

import hashlib
import io

from PIL import Image

from datastore.loader import LoadedVersion
from datastore.splits import SPLITS, split_of
from deploy.demo.corpora import MNIST_LABELS, mnist_digits


def mnist_version(n: int = 1000, name: str = "mnist") -> LoadedVersion:
    """A dataset version of ``n`` MNIST digits held in memory, split the way snapshots split.

    Records have the shape snapshots write for image items: the id is the SHA-256 of the image bytes
    (so a digit keeps its split whatever ``n`` is) and ``image`` names its key in ``images``.
    """
    splits: dict[str, list[dict]] = {s: [] for s in SPLITS}
    images: dict[str, bytes] = {}
    seen = set()
    for digit in mnist_digits(limit=n, seed=1):
        key = hashlib.sha256(digit.png).hexdigest()
        if key in seen:
            continue  # ids must be unique, as in a snapshot (the 5,000 digits all differ: nothing is dropped)
        seen.add(key)
        rel = f"images/{digit.name}"
        images[rel] = digit.png
        record = {"id": key, "text": "", "label": digit.label, "url": "", "image": rel}
        splits[split_of(key)].append(record)
    manifest = {"labels": list(MNIST_LABELS), "task_type": "image_classification"}
    return LoadedVersion(name, manifest, splits, images)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> bytes:
    """A PNG of one colour."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def noise_png(seed: int, size: tuple[int, int] = (28, 28)) -> bytes:
    """A deterministic greyscale PNG of random pixels: a different image for every seed."""
    import random

    out = io.BytesIO()
    Image.frombytes("L", size, random.Random(seed).randbytes(size[0] * size[1])).save(out, format="PNG")
    return out.getvalue()
