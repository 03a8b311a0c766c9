"""Real child processes for the system tests: Celery workers and the jobs they serve, and a process that
consecutive tests share."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from datastore.models import InferenceJob
from deploy.processes import Service, wait_log, worker_command

MODEL = "sentiment-test"  # the name the ``registered_model`` fixture registers the session's model under
TEXTS = [
    f"{word} flight number {n}, {mood}"
    for n, (word, mood) in enumerate(
        [("great", "thanks"), ("awful", "never again"), ("okay", "fine"), ("late", "lost my bag")] * 16
    )
]
# Set by pytest for each phase of each test: no reason for a process started in one test to serve no other.
PER_TEST_VARIABLES = frozenset({"PYTEST_CURRENT_TEST"})


def start_worker(tmp_path: Path, name: str, queues: str = "inference", **env: str) -> Service:
    """A started ``celery worker`` (prefork, one process) named ``NAME-PID@host``, ready to take tasks.

    Its log is ``tmp_path/NAME.log``: a folder that holds no earlier log of that name, or "ready." is found at once.
    """
    worker = Service(
        name,
        worker_command(concurrency=1, queues=queues, name=f"{name}-{os.getpid()}@%h"),
        tmp_path / f"{name}.log",
        env=env,
    )
    worker.start()
    wait_log(worker, "ready.", timeout=90)
    return worker


def wait_done(ids: list[str], timeout: float = 60) -> list[InferenceJob]:
    """The jobs ``ids`` once every one of them has succeeded or failed; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list(InferenceJob.objects.filter(pk__in=ids))
        if all(j.status in ("succeeded", "failed") for j in jobs):
            return jobs
        time.sleep(0.2)
    raise AssertionError(f"jobs not finished: {[(j.pk, j.status) for j in jobs]}")


def child_pids(pid: int) -> set[int]:
    """Direct children of a process, read from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.add(int(entry.name))
    return children


class SharedService:
    """One child process for the tests that ask for it under the same environment, started on first use.

    A test that sets a variable the process reads at start (a monkeypatched setting) gets a process of its own; a
    process that died is started again.
    """

    def __init__(self, start: Callable[[dict[str, str]], Service]) -> None:
        self.start = start
        self.service: Service | None = None
        self.env: dict[str, str] = {}

    def get(self, env: Mapping[str, str]) -> Service:
        """The running process started under ``env``; the process started under another environment is stopped."""
        wanted = {key: value for key, value in env.items() if key not in PER_TEST_VARIABLES}
        if self.service is not None and (self.env != wanted or not running(self.service)):
            self.stop()
        if self.service is None:
            self.service, self.env = self.start(dict(env)), wanted
        return self.service

    def stop(self) -> None:
        """Stop the process, if one runs; the next ``get`` starts another."""
        if self.service is not None:
            self.service.stop()
            self.service = None


def running(service: Service) -> bool:
    """Whether ``service`` was started and has not exited."""
    return service.proc is not None and service.proc.poll() is None
