"""Annotation throughput: next-task + submit cycles per second and latency with concurrent clients on MySQL,
and the same workflow against Label Studio in the same run.

    python -m bench.annotation [--clients 50] [--tasks 3000] [--label-studio-venv /tmp/lsvenv]

Label Studio runs from its own virtualenv (``python3 -m venv V && V/bin/pip install label-studio
gunicorn psycopg2-binary``), under gunicorn with the same workers and threads as fsml, on PostgreSQL at
127.0.0.1 (its production database; its migrations do not run on MySQL; PGUSER/PGPASSWORD). Its users,
tokens and project are made through its own models and REST API, with telemetry, error reporting and
version checks turned off. Each system is measured for ``--seconds``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import requests

from bench.crawl import setup_database


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


Cycle = tuple[list[float], list[float], int]


@dataclass(frozen=True)
class Workflow:
    """The two requests of a cycle; ``submit_url`` has a ``{task}`` field for the task id."""

    next_url: str
    next_method: str
    submit_url: str
    submit_body: dict[str, Any]
    seconds: float
    think: float = 0.0


def client(token: str, flow: Workflow, deadline: float) -> Cycle:
    """One annotator: next-task then submit until ``deadline`` (time.monotonic) or until nothing is left
    (204 or 404). A request that fails or takes over 30 s counts as an error; the cycle is not counted."""
    next_ms, submit_ms, errors = [], [], 0
    pause = random.Random(token)  # annotators read at their own pace: no synchronised bursts
    if flow.think:
        time.sleep(pause.uniform(0, flow.think))
    with requests.Session() as http:
        http.headers["Authorization"] = f"Token {token}"
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                res = http.request(flow.next_method, flow.next_url, timeout=30)
            except requests.RequestException:
                errors += 1
                continue
            t1 = time.perf_counter()
            if res.status_code in (204, 404):
                break
            if res.status_code != 200:
                errors += 1
                continue
            try:
                url = flow.submit_url.format(task=res.json()["id"])
                ok = http.post(url, json=flow.submit_body, timeout=30).status_code == 201
            except requests.RequestException:
                ok = False
            t2 = time.perf_counter()
            if not ok:
                errors += 1
                continue
            next_ms.append(1000 * (t1 - t0))
            submit_ms.append(1000 * (t2 - t1))
            if flow.think:  # reading the next item, 0.5x to 1.5x the mean: offered load = clients / think per s
                time.sleep(pause.uniform(0.5 * flow.think, 1.5 * flow.think))
    return next_ms, submit_ms, errors


def client_process(tokens: list[str], flow: Workflow, deadline: float) -> list[Cycle]:
    with ThreadPoolExecutor(len(tokens)) as pool:
        return list(pool.map(lambda token: client(token, flow, deadline), tokens))


def run_clients(tokens: list[str], flow: Workflow, processes: int) -> tuple[list[Cycle], float]:
    """The clients as threads spread over ``processes`` processes, so the clients' own Python (one GIL
    per process) does not add queueing of its own to the latencies measured."""
    processes = max(1, min(processes, len(tokens)))
    groups = [tokens[i::processes] for i in range(processes)]
    started = time.perf_counter()
    deadline = time.monotonic() + flow.seconds
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = [c for group in pool.map(client_process, groups, repeat(flow), repeat(deadline)) for c in group]
    return results, time.perf_counter() - started


SERVED = re.compile(r'"(?:POST|GET) (\S+) HTTP/[\d.]+" (\d{3}) .* (\d+)us$')


def server_times(log: Path) -> dict[str, list[float]]:
    """Milliseconds the server spent on each successful next-task and submit request (gunicorn's log)."""
    times: dict[str, list[float]] = {"next task": [], "submit": []}
    for line in log.read_text(errors="replace").splitlines():
        match = SERVED.search(line)
        if match and match.group(2) in ("200", "201"):
            kind = "next task" if match.group(1).endswith("/next/") else "submit"
            times[kind].append(int(match.group(3)) / 1000)
    return times


def report(name: str, results: list[Cycle], elapsed: float) -> float:
    next_ms = [v for r in results for v in r[0]]
    submit_ms = [v for r in results for v in r[1]]
    cycles = [a + b for r in results for a, b in zip(r[0], r[1], strict=True)]
    errors = sum(r[2] for r in results)
    rate = len(cycles) / elapsed
    print(
        f"\n{name}: {len(cycles)} cycles by {len(results)} clients in {elapsed:.1f} s: {rate:.0f} cycles/s, "
        f"{errors} errors"
    )
    print("| request | p50 ms | p95 ms |\n| --- | --- | --- |")
    for label, values in (("next task", next_ms), ("submit", submit_ms), ("cycle", cycles)):
        print(f"| {label} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} |")
    return rate


LS_SETUP = """
from rest_framework.authtoken.models import Token
from jwt_auth.models import JWTSettings
from organizations.models import Organization
from users.models import User
owner = User.objects.create_user(email="owner@bench.test", password="bench-password-1")
org = Organization.create_organization(created_by=owner, title="bench")
owner.active_organization = org
owner.save()
JWTSettings.objects.update_or_create(organization=org, defaults={"legacy_api_tokens_enabled": True})
tokens = [Token.objects.get_or_create(user=owner)[0].key]
for i in range(int(N) - 1):
    u = User.objects.create_user(email=f"a{i}@bench.test", password="bench-password-1")
    org.add_user(u)
    u.active_organization = org
    u.save()
    tokens.append(Token.objects.get_or_create(user=u)[0].key)
print("TOKENS", " ".join(tokens))
"""
PG_USER = os.environ.get("PGUSER", "postgres")
LS_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
    '<Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices></View>'
)


def bench_label_studio(
    venv: Path, clients: int, workers: int, texts: list[str], seconds: float, think: float, processes: int
) -> float:
    """Label Studio on PostgreSQL, its production database (its migrations do not run on MySQL)."""
    from deploy.processes import Service, free_port, wait_http

    package = next(venv.glob("lib/python3*/site-packages/label_studio"))
    database = f"labelstudio_bench_{time.strftime('%Y%m%d%H%M%S')}"
    python = str(venv / "bin" / "python")
    create_db = (
        f"import psycopg2; c = psycopg2.connect(host='127.0.0.1', user='{PG_USER}', dbname='postgres'); "
        f"c.autocommit = True; c.cursor().execute('CREATE DATABASE {database}')"
    )
    subprocess.run([python, "-c", create_db], check=True)
    with tempfile.TemporaryDirectory() as data:
        env = {
            # No telemetry, error reports or version checks: nothing may leave this machine.
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_BASE_DATA_DIR": data,
            "DJANGO_DB": "postgresql",
            "POSTGRE_NAME": database,
            "POSTGRE_HOST": "127.0.0.1",
            "POSTGRE_USER": PG_USER,
            "POSTGRE_PASSWORD": os.environ.get("PGPASSWORD", ""),
            "DJANGO_SETTINGS_MODULE": "core.settings.label_studio",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(package),
        }
        run_env = {**os.environ, **env}
        subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=package, env=run_env, check=True)
        proc = subprocess.run(
            [python, "manage.py", "shell", "-c", LS_SETUP.replace("int(N)", str(clients))],
            cwd=package,
            env=run_env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"Label Studio set-up failed:\n{proc.stderr[-2000:]}")
        out = proc.stdout
        tokens = out.split("TOKENS", 1)[1].split()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [
            str(venv / "bin" / "gunicorn"),
            "core.wsgi:application",
            "--chdir",
            str(package),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--timeout",
            "120",
        ]
        with Service("label-studio", cmd, Path(data) / "ls.log", env=env) as ls:
            wait_http(ls, f"{base}/health", timeout=120)
            auth = {"Authorization": f"Token {tokens[0]}"}
            project = requests.post(
                f"{base}/api/projects",
                headers=auth,
                timeout=60,
                json={"title": "bench", "label_config": LS_CONFIG, "maximum_annotations": 1},
            ).json()
            requests.post(
                f"{base}/api/projects/{project['id']}/import",
                headers=auth,
                timeout=600,
                json=[{"text": t} for t in texts],
            ).raise_for_status()
            result = {
                "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["a"]}}],
                "lead_time": 0.5,
            }
            flow = Workflow(
                f"{base}/api/projects/{project['id']}/next",
                "GET",
                base + "/api/tasks/{task}/annotations/",
                result,
                seconds,
                think,
            )
            results, elapsed = run_clients(tokens, flow, processes)
    return report("Label Studio (gunicorn, PostgreSQL)", results, elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--label-studio-venv", default="", help="virtualenv with label-studio and gunicorn")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time per system")
    parser.add_argument(
        "--think", type=float, default=0.0, help="seconds each annotator waits between cycles (0: saturate the server)"
    )
    parser.add_argument("--client-processes", type=int, default=5, help="processes the client threads are spread over")
    args = parser.parse_args()
    setup_database()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.services import create_project
    from datastore import services
    from deploy.processes import Service, free_port, wait_http, web_command

    stamp = time.strftime("%Y%m%d%H%M%S")
    items = services.import_texts(f"bench-{stamp}", [f"benchmark text {stamp} number {i}" for i in range(args.tasks)])
    users = [get_user_model().objects.create(username=f"bench-{stamp}-{i}") for i in range(args.clients)]
    project = create_project(f"bench-{stamp}", "text_classification", ["a", "b", "c"], items, members=users)
    tokens = [Token.objects.create(user=u).key for u in users]
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    flow = Workflow(
        f"{base}/api/projects/{project.pk}/next/",
        "POST",
        base + "/api/tasks/{task}/annotations/",
        {"value": "a"},
        args.seconds,
        args.think,
    )
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "web.log"
        # As deployed: DEBUG off (no per-request query log, no static file rescans), a real secret key.
        served = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        command = web_command("127.0.0.1", port, workers=args.workers, threads=args.threads)
        web = Service("web", command, log, env=served)
        with web:
            wait_http(web, f"{base}/readyz")
            results, elapsed = run_clients(tokens, flow, args.client_processes)
        inside = server_times(log)
    ours = report("fsml (gunicorn, MySQL)", results, elapsed)
    print("\nTime inside the server (gunicorn's access log), the rest is the network, queueing and the clients:")
    print("| request | p50 ms | p95 ms |\n| --- | --- | --- |")
    for label, values in inside.items():
        if values:
            print(f"| {label} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} |")
    if args.label_studio_venv:
        texts = [f"benchmark text {stamp} number {i}" for i in range(args.tasks)]
        theirs = bench_label_studio(
            Path(args.label_studio_venv),
            args.clients,
            args.workers,
            texts,
            args.seconds,
            args.think,
            args.client_processes,
        )
        print(f"\nfsml / Label Studio throughput = {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
