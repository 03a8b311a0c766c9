"""The data repository: a git repository whose dataset folders are tracked and pushed by DVC.

Uses DVC's and scmrepo's Python APIs, so no git binary is needed. DVC holds one lock per repository, so
every call here is serialised through a file lock (parallel DVC commands would fail).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from dvc.repo import Repo

DVC_LOGGERS = ("dvc", "dvc_data", "dvc_objects")


def dvc_repo_class() -> type[Repo]:
    """DVC's ``Repo``, imported with DVC's logging handed to the application's.

    Importing DVC gives its loggers handlers of their own, at INFO, that print to stdout ("Initialized DVC
    repository", "To track the changes with git, run: git add ..."). Those handlers are taken off here and the
    records propagate, at the level the loggers had before DVC loaded (WARNING when none was set), so the web app's
    and the CLI's logging configuration decide where they go.
    """
    levels = {name: logging.getLogger(name).level or logging.WARNING for name in DVC_LOGGERS}
    # local: DVC takes a third of a second to import; the web app imports this module but only snapshots use it
    import dvc.logger
    from dvc.repo import Repo

    for name in DVC_LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, dvc.logger.LoggerHandler)]:
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(levels[name])
    return Repo


class DataRepoError(Exception):
    """A DVC or git step on the data repository failed."""

    def __init__(self, root: Path, step: str, reason: str) -> None:
        super().__init__(f"data repository {root}: {step} failed: {reason}")
        self.root, self.step, self.reason = root, step, reason


@dataclass(frozen=True)
class Committed:
    md5: str
    rev: str


class DataRepo:
    """A git + DVC repository at ``root`` whose default remote is ``remote`` (a folder or a URL; for an
    S3-compatible store such as MinIO, ``endpoint`` is its URL)."""

    def __init__(self, root: Path, remote: str, endpoint: str = "") -> None:
        self.root = root.resolve()
        self.remote, self.endpoint = remote, endpoint

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root.parent / f".{self.root.name}.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Create the repository, and commit its remote before any data (old revisions stay readable)."""
        # local: scmrepo (DVC's git library) is slow to import; the web app imports this module without using it
        from scmrepo.git import Git

        repo_class = dvc_repo_class()
        with self.locked():
            if (self.root / ".dvc").is_dir():
                return
            self._ensure_bucket()
            if not (self.root / ".git").exists():
                Git.init(str(self.root))
            repo = repo_class.init(str(self.root))
            try:
                with repo.config.edit() as conf:
                    conf["remote"]["storage"] = {"url": self.remote}
                    if self.endpoint:
                        conf["remote"]["storage"]["endpointurl"] = self.endpoint
                    conf["core"]["remote"] = "storage"
                repo.scm.add([str(self.root / p) for p in (".dvc/config", ".dvc/.gitignore", ".dvcignore")])
                repo.scm.commit("Configure the DVC remote")
            finally:
                repo.close()

    def _ensure_bucket(self) -> None:
        """An S3 remote's bucket is made on first use, so a fresh MinIO needs no set-up step."""
        if not self.remote.startswith("s3://"):
            return
        try:  # local: s3fs is an optional dependency (the s3 extra)
            import s3fs
        except ImportError as exc:
            raise DataRepoError(
                self.root, "remote", "s3:// remotes need the s3 extra (pip install 'fsml[s3]')"
            ) from exc
        bucket = self.remote[len("s3://") :].split("/", 1)[0]
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": self.endpoint} if self.endpoint else {})
        try:
            if not fs.exists(bucket):
                fs.mkdir(bucket)
        except Exception as exc:  # botocore's errors: unreachable endpoint, refused credentials
            raise DataRepoError(self.root, "remote", f"bucket {bucket!r} cannot be reached or made: {exc}") from exc

    def has_tag(self, tag: str) -> bool:
        # local: scmrepo (DVC's git library) is slow to import; the web app imports this module without using it
        from scmrepo.git import Git

        scm = Git(str(self.root))
        try:
            return scm.get_ref(f"refs/tags/{tag}") is not None
        finally:
            scm.close()

    def delete_tag(self, tag: str) -> None:
        """Drop a version's tag (used when its database record could not be written)."""
        # local: scmrepo (DVC's git library) is slow to import; the web app imports this module without using it
        from scmrepo.git import Git

        with self.locked():
            scm = Git(str(self.root))
            try:
                scm.remove_ref(f"refs/tags/{tag}")
            finally:
                scm.close()

    def commit_folder(self, rel_dir: str, message: str, tag: str) -> Committed:
        """``dvc add`` a folder, commit its .dvc file, tag the commit and ``dvc push`` the data."""
        repo_class = dvc_repo_class()
        self.ensure()
        with self.locked():
            repo = repo_class(str(self.root))
            try:
                target = self.root / rel_dir
                try:
                    repo.add(str(target))
                except Exception as exc:  # DVC raises many types; all mean the same to the caller
                    raise DataRepoError(self.root, "dvc add", str(exc)) from exc
                dvc_file = target.with_name(target.name + ".dvc")
                gitignore = target.parent / ".gitignore"
                # Push before committing and tagging: a failed push leaves no tag, so the name stays free.
                try:
                    repo.push(targets=[str(dvc_file)])
                except Exception as exc:
                    raise DataRepoError(self.root, "dvc push", str(exc)) from exc
                repo.scm.add([str(dvc_file), str(gitignore)])
                repo.scm.commit(message)
                repo.scm.tag(tag, annotated=True, message=message)
                rev = repo.scm.get_rev()
            finally:
                repo.close()
        md5 = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
        return Committed(md5=md5, rev=rev)
