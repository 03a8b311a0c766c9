"""Labelled images in: ``fsml dataset import`` of an MNIST-sized ImageFolder tree, then ``fsml dataset snapshot``
keeping its split, both as a user runs them (the real console script, a fresh process each).

    python -m bench.image_import [--images 70000] [--api-images 0]

Writes ``--images`` distinct deterministic 28x28 greyscale PNGs as ``train/<class>/<file>`` and
``test/<class>/<file>`` over ten classes, six in seven under train/ (70,000 gives MNIST's 60,000 / 10,000), into a
temporary folder, makes an image project and its manager, and times the import and the snapshot end to end
(process start, Django set-up, reading, decoding, hashing and storing each file, the database writes; for the
snapshot the database read, copying the images into the data repository, ``dvc add``, push, git commit and tag).
Peak RSS is each child's own (``os.wait4``). With ``--api-images N`` it also times the API's path for a zip
archive of N other images: the request-side checks (``import_archive``: open, parse, queue a ``ProjectJob``),
then the job itself run in this process as the worker runs it (``background.run``), without the queue's hop.

Database: DATABASE_URL, default mysql://root@127.0.0.1:3306/fsml_bench_images (created if missing); FSML_HOME is a
temporary folder. The rows this run made are deleted at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

CLASSES = [f"class{c}" for c in range(10)]
INK = bytes(0 if b < 180 else 40 if b < 220 else 255 for b in range(256))  # mostly black, some grey and white
FSML = str(Path(sys.executable).with_name("fsml"))


def png(seed: int) -> bytes:
    """A deterministic 28x28 greyscale PNG: a blurred blob on noise, different for every seed (about 0.6 KB)."""
    from PIL import Image, ImageFilter

    pixels = random.Random(seed).randbytes(784).translate(INK)
    img = Image.frombytes("L", (28, 28), pixels).filter(ImageFilter.GaussianBlur(1))
    out = io.BytesIO()
    img.putpixel((0, 0), seed % 256)  # the blur may make two seeds alike; the corner pixels keep them apart
    img.putpixel((27, 27), (seed // 256) % 256)
    img.putpixel((0, 27), (seed // 65536) % 256)
    img.save(out, format="PNG")
    return out.getvalue()


def layout(n: int, first_seed: int = 0) -> list[tuple[str, int]]:
    """(relative path, seed) of ``n`` images: six in seven under train/, the rest under test/, classes in turn."""
    train = n * 6 // 7
    return [
        (f"{'train' if i < train else 'test'}/{CLASSES[i % len(CLASSES)]}/{i:06d}.png", first_seed + i)
        for i in range(n)
    ]


def write_folder(root: Path, n: int) -> int:
    size = 0
    for rel, seed in layout(n):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = png(seed)
        path.write_bytes(data)
        size += len(data)
    return size


def write_zip(path: Path, n: int, first_seed: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:  # PNGs do not deflate further
        for rel, seed in layout(n, first_seed):
            archive.writestr(rel, png(seed))


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``fsml ARGS`` and wait for it; returns (seconds, peak RSS in MiB of that process, its output)."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([FSML, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if proc.returncode != 0:
        raise SystemExit(f"fsml {' '.join(args)} failed ({proc.returncode}):\n{output}")
    return seconds, usage.ru_maxrss / 1024, output  # ru_maxrss is in KiB on Linux


def make_project(name: str, manager: str) -> tuple[Any, Any]:
    from django.contrib.auth import get_user_model

    from annotation.services import create_project, set_role

    user = get_user_model().objects.get_or_create(username=manager)[0]
    project = create_project(name, "image_classification", CLASSES, [])
    set_role(project, user, "manager")
    return project, user


def bench_api(stamp: str, n: int, first_seed: int, tmp: Path) -> tuple[float, float, float, dict[str, Any]]:
    """(seconds to write the zip, request-side seconds, job seconds, job result) for a zip of ``n`` images."""
    from annotation import background, image_imports
    from datastore.models import ProjectJob

    project, user = make_project(f"{stamp}-api", f"{stamp}-manager")
    archive = tmp / "upload.zip"
    began = time.perf_counter()
    write_zip(archive, n, first_seed)
    written = time.perf_counter() - began
    with archive.open("rb") as upload:
        began = time.perf_counter()
        queued = image_imports.import_archive(project, user, "imagefolder", upload)
        request = time.perf_counter() - began
    if "job" not in queued:
        raise SystemExit(f"{n} images were imported at once, not queued: give --api-images over 2000")
    job: ProjectJob = queued["job"]
    began = time.perf_counter()
    background.run(job.pk)
    seconds = time.perf_counter() - began
    job.refresh_from_db()
    if job.status != ProjectJob.Status.SUCCEEDED:
        raise SystemExit(f"the import job ended {job.status}: {job.error}")
    return written, request, seconds, job.result


def clean_up(stamp: str) -> None:
    from django.contrib.auth import get_user_model

    from annotation.services.imports import import_source
    from datastore.models import DatasetVersion, Item, Project, Source

    for project in Project.objects.filter(name__startswith=stamp):
        source = import_source(project)
        DatasetVersion.objects.filter(project=project).delete()
        project.delete()
        Item.objects.filter(source__name=source).delete()
        Source.objects.filter(name=source).delete()
    get_user_model().objects.filter(username__startswith=stamp).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=70_000)
    parser.add_argument("--api-images", type=int, default=0, help="also time a zip of this many through the API")
    args = parser.parse_args()
    if args.images < 70:
        parser.error("--images must be at least 70")
    os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/fsml_bench_images")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    for key, value in {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@bench.invalid"}.items():
        os.environ.setdefault(key, value)
        os.environ.setdefault(key.replace("AUTHOR", "COMMITTER"), value)
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["FSML_HOME"] = str(tmp / "home")  # the store, the data repository and its DVC remote
        from bench.crawl import setup_database

        setup_database()
        from django.db import connection

        stamp = f"bench-img-{time.strftime('%Y%m%d%H%M%S')}"
        make_project(stamp, f"{stamp}-manager")
        began = time.perf_counter()
        size = write_folder(tmp / "images", args.images)
        print(
            f"{args.images:,} 28x28 PNGs ({size / 1024**2:.1f} MiB, {args.images * 6 // 7:,} train / "
            f"{args.images - args.images * 6 // 7:,} test, 10 classes) written in {time.perf_counter() - began:.1f} s; "
            f"database {connection.vendor} {connection.settings_dict['NAME']}; {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.2f}"
        )
        env = os.environ.copy()
        try:
            rows = []
            cmd = [
                "dataset",
                "import",
                stamp,
                str(tmp / "images"),
                "--format",
                "imagefolder",
                "--as",
                f"{stamp}-manager",
            ]
            seconds, rss, out = run_cli(cmd, env)
            said = " ".join(out.split())
            if f"{args.images} new task(s) ({args.images} labelled)" not in said:
                raise SystemExit(f"unexpected import output: {out[-2000:]}")
            rows.append(("fsml dataset import (imagefolder, train/ + test/)", seconds, rss))
            info = tmp / "info.json"
            cmd = ["dataset", "snapshot", stamp, "--name", f"{stamp}-v1", "--info", str(info)]
            seconds, rss, out = run_cli(cmd, env)
            counts = json.loads(info.read_text())["counts"]
            expected = {"train": args.images * 6 // 7, "val": 0, "test": args.images - args.images * 6 // 7}
            if counts != expected:
                raise SystemExit(f"the snapshot did not keep the split: {counts}, expected {expected}")
            rows.append((f"fsml dataset snapshot (split kept: {counts})", seconds, rss))
            print("\n| step | images | seconds | images/s | peak RSS MiB |\n| --- | --- | --- | --- | --- |")
            for label, secs, peak in rows:
                print(f"| {label} | {args.images:,} | {secs:.1f} | {args.images / secs:,.0f} | {peak:,.0f} |")
            if args.api_images:
                written, request, job_seconds, result = bench_api(stamp, args.api_images, args.images, tmp)
                n = args.api_images
                print(f"\nAPI path, a zip of {n:,} other images ({written:.1f} s to write it):")
                print("| step | seconds | images/s |\n| --- | --- | --- |")
                print(f"| import_archive (open, parse, check, queue the job) | {request:.2f} | {n / request:,.0f} |")
                print(f"| the job (read, decode, store, write tasks) | {job_seconds:.1f} | {n / job_seconds:,.0f} |")
                print(f"result: {result['tasks_created']:,} tasks, splits {result['splits']}")
        finally:
            clean_up(stamp)


if __name__ == "__main__":
    main()
