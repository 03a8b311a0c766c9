"""``fsml dataset`` (snapshot, import, export, list, show, diff, pull) and ``fsml pipeline`` (the road as a DVC
pipeline).

Only ``snapshot``, ``import``, ``export``, and ``list`` without ``--repo``, touch the database; the rest read the data
repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deploy.cli_support import JsonOption, RepoOption, fail, repo_or_default, start_django, write_json
from deploy.console import console, print_json, print_table, progress, say, warn

if TYPE_CHECKING:
    from datastore.loader import LoadedVersion

dataset_app = typer.Typer(help="Dataset versions (DVC snapshots of labelled projects).", no_args_is_help=True)
pipeline_app = typer.Typer(help="The road as a DVC pipeline (dvc repro, dvc metrics diff).", no_args_is_help=True)


def _load(name: str, repo: str) -> LoadedVersion:
    """A version's records without its images, or exit with the loader's reason."""
    # local: the loader imports numpy and DVC's helpers; importing it here keeps `fsml --help` fast
    from datastore.loader import DatasetError, load

    try:
        return load(name, repo=repo, images=False)
    except DatasetError as exc:
        fail(str(exc))


@dataset_app.command("snapshot")
def dataset_snapshot(
    project: Annotated[str, typer.Argument(help="Annotation project name.")],
    name: Annotated[str, typer.Option(help="Name of the new dataset version.")],
    if_missing: Annotated[bool, typer.Option(help="Succeed without a new snapshot when NAME exists.")] = False,
    info: Annotated[Path | None, typer.Option(help="Write the version's name, hashes and counts here (JSON).")] = None,
    val_pct: Annotated[int, typer.Option(help="Percent of records (without a fixed split) for val.")] = 10,
    test_pct: Annotated[int, typer.Option(help="Percent of records (without a fixed split) for test.")] = 10,
    split_seed: Annotated[str, typer.Option(help="Salt for the hash split (empty: the stable default split).")] = "",
) -> None:
    """Freeze a project's finished labels as a DVC-tracked dataset version (immutable once made).

    Tasks whose split an import fixed (a split column or train/val/test folders) keep it; the rest are split by a
    stable hash of the item, into --val-pct and --test-pct percent, salted by --split-seed when given.
    """
    start_django()
    # local: the models and the snapshot need Django, set up just above
    from datastore.dvcrepo import DataRepoError
    from datastore.errors import SnapshotError
    from datastore.models import DatasetVersion, Project
    from datastore.snapshot import SNAPSHOT_STEPS, snapshot_project
    from datastore.splits import empty_split_warnings
    from deploy.stages import data_repo

    version = DatasetVersion.objects.filter(name=name).first()
    if version is not None and if_missing:
        console.print(f"dataset version {name} exists (md5 {version.dvc_md5}, git {version.git_rev}); kept")
    else:
        found = Project.objects.filter(name=project).first()
        if found is None:
            fail(f"no project named {project!r}")
        with progress() as bar:
            task = bar.add_task(f"snapshot {name}", total=len(SNAPSHOT_STEPS))

            def on_step(step: str) -> None:
                bar.update(task, completed=SNAPSHOT_STEPS.index(step), description=f"snapshot {name}: {step}")

            try:
                version = snapshot_project(
                    found, name, data_repo(), val_pct=val_pct, test_pct=test_pct, seed=split_seed, on_step=on_step
                )
            except (SnapshotError, DataRepoError) as exc:
                fail(str(exc))
            bar.update(task, completed=len(SNAPSHOT_STEPS), description=f"snapshot {name}: done")
        counts = ", ".join(f"{split} {n}" for split, n in version.counts.items())
        say(f"dataset version {name}: {counts} records; md5 {version.dvc_md5}, git {version.git_rev}")
        for warning in empty_split_warnings(version.counts):
            warn(f"{name}: {warning}")
    if info is not None:
        fields = {"name": name, "md5": version.dvc_md5, "git_rev": version.git_rev, "counts": version.counts}
        write_json(info, {**fields, "label_distribution": version.label_distribution})


@dataset_app.command("import")
def dataset_import(
    project: Annotated[str, typer.Argument(help="Annotation project name.")],
    path: Annotated[Path, typer.Argument(help="A folder, a zip archive, or the CSV/JSON file beside the images.")],
    fmt: Annotated[str, typer.Option("--format", help="imagefolder, csv, labelstudio (or doccano, conll).")],
    as_user: Annotated[str, typer.Option("--as", help="Username of a manager of the project (or staff).")],
    manifest: Annotated[str, typer.Option(help="The CSV or JSON file inside the folder or archive, if several.")] = "",
) -> None:
    """Import labelled data from disk, all or nothing: labels become final (gold) labels, a split column or
    train/val/test folders become fixed splits, file names are kept.

    Image projects take an ImageFolder tree (<class>/<file>, optionally under train/, val/, test/), or a CSV
    (image or file, label, split) or Label Studio JSON with the image files; text projects take a records file.
    """
    start_django()
    # local: the models and the services need Django, set up just above
    from django.contrib.auth import get_user_model

    from annotation import image_formats, services
    from annotation.formats import ImportFormatError
    from datastore.models import Project

    found = Project.objects.filter(name=project).first()
    if found is None:
        fail(f"no project named {project!r}")
    user = get_user_model().objects.filter(username=as_user).first()
    if user is None:
        fail(f"no user named {as_user!r}")
    if not path.exists():
        fail(f"{path} does not exist")
    try:
        if found.task_type != Project.TaskType.IMAGE_CLASSIFICATION and path.is_file() and not _is_zip(path):
            records, created = services.import_file(found, user, fmt, path.read_bytes())
            console.print(f"imported {records} record(s) into {project}: {created} new task(s)")
            return
        if path.is_file() and not _is_zip(path):  # the manifest itself: the images lie beside it
            bundle: image_formats.Bundle = image_formats.FolderBundle(path.parent)
            manifest = manifest or path.name
        else:
            bundle = image_formats.ZipBundle(path) if path.is_file() else image_formats.FolderBundle(path)
        with progress() as bar:
            task = bar.add_task("reading images", total=None)
            result = services.import_labelled_images(
                found, user, bundle, fmt, manifest, lambda done, total: bar.update(task, completed=done, total=total)
            )
    except ImportFormatError as exc:
        fail(str(exc))
    except services.AnnotationError as exc:
        fail(exc.reason)
    console.print(
        f"imported {result['files']} image(s) into {project}: {result['tasks_created']} new task(s) "
        f"({result['labelled']} labelled), {result['duplicates']} duplicate(s), "
        f"{result['already_in_project']} already in the project; splits {result['splits']}"
    )


def _is_zip(path: Path) -> bool:
    import zipfile  # local: only this command reads archives

    return zipfile.is_zipfile(path)


@dataset_app.command("export")
def dataset_export(
    project: Annotated[str, typer.Argument(help="Annotation project name.")],
    fmt: Annotated[str, typer.Option("--format", help="labelstudio, doccano, csv or conll.")],
    out: Annotated[Path, typer.Option(help="Folder to write tasks.<ext> (and images/) into.")],
    with_files: Annotated[
        bool, typer.Option(help="Copy each image to images/<content hash><suffix> in --out.")
    ] = False,
) -> None:
    """Export every task of a project with its labels; image tasks name their file (file name, content hash and
    the path of the image inside --out)."""
    start_django()
    # local: the models and the services need Django, set up just above
    from annotation import formats, services
    from datastore.models import Project

    found = Project.objects.filter(name=project).first()
    if found is None:
        fail(f"no project named {project!r}")
    rows = services.export_rows(found)
    try:
        payload, _ = formats.export(fmt, found.task_type, rows)
    except formats.ImportFormatError as exc:
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"tasks.{formats.EXTENSIONS[fmt]}"
    target.write_bytes(payload)
    copied = 0
    if with_files:
        for row in rows:
            if "image_file" in row and not (out / row["image"]).exists():
                (out / row["image"]).parent.mkdir(exist_ok=True)
                try:
                    shutil.copyfile(row["image_file"], out / row["image"])
                except OSError as exc:
                    fail(f"task {row['id']}: its image cannot be read: {exc}")
                copied += 1
    console.print(
        f"exported {len(rows)} task(s) of {project} to {target}" + (f", {copied} image(s)" if with_files else "")
    )


@dataset_app.command("list")
def dataset_list(repo: RepoOption = "", as_json: JsonOption = False) -> None:
    """List dataset versions as a table: the database's records, or with --repo the versions tagged in that
    repository. --json prints a list of objects (name, project, counts, md5, git_rev, created_at, created_by)."""
    if repo:
        from datastore.loader import list_versions  # local: keeps `fsml --help` fast

        names = list_versions(repo)
        if as_json:
            print_json([{"name": name} for name in names])
        else:
            print_table(["name"], [[name] for name in names])
        return
    start_django()
    from datastore.models import DatasetVersion  # local: needs Django, set up just above

    rows = [
        {
            "name": v.name,
            "project": v.project.name,
            "counts": v.counts,
            "md5": v.dvc_md5,
            "git_rev": v.git_rev,
            "created_at": v.created_at.isoformat(),
            "created_by": v.created_by.username if v.created_by else None,
        }
        for v in DatasetVersion.objects.select_related("project", "created_by").order_by("created_at")
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no dataset versions yet (fsml dataset snapshot PROJECT --name NAME)")
        return
    print_table(
        ["name", "project", "train", "val", "test", "md5", "git", "created (UTC)", "by"],
        [
            [
                r["name"], r["project"], *(r["counts"].get(s, 0) for s in ("train", "val", "test")), r["md5"][:12],
                r["git_rev"][:10], r["created_at"][:16].replace("T", " "), r["created_by"],
            ]
            for r in rows
        ],
        numeric=("train", "val", "test"),
    )  # fmt: skip


@dataset_app.command("show")
def dataset_show(
    name: Annotated[str, typer.Argument(help="Dataset version name.")],
    repo: RepoOption = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the description as JSON.")] = False,
) -> None:
    """Counts and label distribution per split, with warnings about imbalance and leakage."""
    from datastore.versions import describe  # local: keeps `fsml --help` fast

    info = describe(_load(name, repo_or_default(repo)))
    if as_json:
        print_json(info)
        return
    say(f"{info['name']}: project {info['project']}, {info['task_type']}, labels {', '.join(info['labels'])}")
    labels = info["labels"]
    print_table(
        ["split", "records", *labels],
        [
            [split, count, *(info["label_distribution"].get(split, {}).get(label, 0) for label in labels)]
            for split, count in info["counts"].items()
        ],
        numeric=("records", *labels),
    )
    for warning in info["warnings"]:
        warn(warning)


@dataset_app.command("diff")
def dataset_diff(
    a: Annotated[str, typer.Argument(help="Older dataset version.")],
    b: Annotated[str, typer.Argument(help="Newer dataset version.")],
    repo: RepoOption = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
    limit: Annotated[int, typer.Option(help="Items listed per kind of change.")] = 20,
) -> None:
    """What was added, removed, relabelled and edited between two versions (by item)."""
    from datastore.versions import diff  # local: keeps `fsml --help` fast

    where = repo_or_default(repo)
    result = diff(_load(a, where), _load(b, where))
    if as_json:
        print_json(result.as_dict())
        return
    console.print(
        f"{a} -> {b}: {len(result.added)} added, {len(result.removed)} removed, "
        f"{len(result.relabelled)} relabelled, {len(result.edited)} edited"
    )
    for kind in ("added", "removed", "edited"):
        for item in getattr(result, kind)[:limit]:
            console.print(f"  {kind} {item}")
    for change in result.relabelled[:limit]:
        console.print(f"  relabelled {change['id']} ({change['url']}): {change['from']} -> {change['to']}")


@dataset_app.command("pull")
def dataset_pull(
    name: Annotated[str, typer.Argument(help="Dataset version name.")],
    out: Annotated[Path, typer.Option(help="Folder to write the version's files into (new or empty).")],
    repo: RepoOption = "",
) -> None:
    """Fetch a version's files from the DVC remote into a folder, checking every checksum."""
    from datastore.loader import DatasetError, pull  # local: keeps `fsml --help` fast

    where = repo_or_default(repo)
    try:
        with progress() as bar:
            bar.add_task(f"pulling {name} from the DVC remote", total=None)
            folder = pull(name, where, out)
    except DatasetError as exc:
        fail(str(exc))
    files = [p for p in folder.rglob("*") if p.is_file()]
    console.print(f"{name}: {len(files)} files in {folder}")


@pipeline_app.command("init")
def pipeline_init(
    folder: Annotated[Path, typer.Argument(help="New research repository (git + DVC) for the pipeline.")],
    project: Annotated[str, typer.Option(help="Annotation project the snapshot stage freezes.")],
    dataset: Annotated[str, typer.Option(help="Dataset version name (made by the snapshot stage if missing).")],
    data_repo: RepoOption = "",
    epochs: Annotated[int, typer.Option()] = 8,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Write dvc.yaml (snapshot -> train -> export -> evaluate) and params.yaml into a new repository."""
    from deploy.pipeline import init_pipeline  # local: it imports DVC; `fsml --help` stays fast

    try:
        made = init_pipeline(folder, project, dataset, repo_or_default(data_repo), epochs=epochs, seed=seed)
    except FileExistsError as exc:
        fail(str(exc))
    console.print(f"pipeline in {made}: cd there, then `dvc repro`; change params.yaml and `dvc metrics diff`")
