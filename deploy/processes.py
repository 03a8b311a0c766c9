"""The long-running processes: web (gunicorn) and worker (celery). Docker runs the same commands."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

# gunicorn's default access log line, plus the time the request took in the server, in microseconds.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)sus'


def web_command(host: str, port: int, workers: int = 2, threads: int = 4) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "fsml.wsgi",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--access-logfile",
        "-",
        "--access-logformat",
        ACCESS_LOG_FORMAT,
        "--timeout",
        "60",
    ]


def worker_command(
    concurrency: int = 1, queues: str = "inference,callbacks,projects", name: str = "worker@%h"
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "fsml",
        "worker",
        "--loglevel",
        "INFO",
        "-Q",
        queues,
        "--concurrency",
        str(concurrency),
        "--prefetch-multiplier",
        "1",
        "--max-tasks-per-child",
        "1000",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        name,
    ]


def flower_command(host: str = "127.0.0.1", port: int = 5555) -> list[str]:
    """Flower, Celery's monitor, on the same broker as the workers. Flower reads FLOWER_BASIC_AUTH
    (``user:password``) from the environment itself, so the password never shows in a process list; its
    ``/metrics`` asks for the same login (deploy/flower.py)."""
    return [sys.executable, "-m", "deploy.flower", "-A", "fsml", "flower", f"--address={host}", f"--port={port}"]


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port")


class Service:
    """A child process with its output in a log file; stopped (TERM, then KILL) on exit."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(f"{self.name} exited early; last log lines:\n" + "\n".join(tail))

    def stop(self, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_http(service: Service, url: str, timeout: float = 60) -> None:
    """Wait until ``url`` answers 200, failing fast if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.check_alive()
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{service.name} did not answer {url} within {timeout:.0f}s")


def wait_log(service: Service, needle: str, timeout: float = 60) -> None:
    """Wait until the process's log shows ``needle`` (e.g. celery's "ready.")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        service.check_alive()
        if needle in service.log_path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{service.name} did not log {needle!r} within {timeout:.0f}s")
