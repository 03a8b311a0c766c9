"""Annotation throughput: next-task + submit cycles per second and latency with concurrent clients on MySQL.

    python -m bench.annotation [--clients 50] [--tasks 3000]

Starts the real web server (gunicorn, as in production) on the benchmark database, creates a project with
``--tasks`` tasks (overlap 1) and one annotator per client, and lets every client run next/submit cycles
over HTTP until the queue is empty. Database: DATABASE_URL, default mysql://root@127.0.0.1:3306/fsml_bench.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from bench.crawl import setup_database


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (4 threads each)")
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

    def client(token: str) -> tuple[list[float], list[float], int]:
        next_ms, submit_ms, errors = [], [], 0
        with requests.Session() as http:
            http.headers["Authorization"] = f"Token {token}"
            while True:
                t0 = time.perf_counter()
                res = http.post(f"{base}/api/projects/{project.pk}/next/", timeout=60)
                t1 = time.perf_counter()
                if res.status_code == 204:
                    return next_ms, submit_ms, errors
                if res.status_code != 200:
                    errors += 1
                    continue
                sub = http.post(f"{base}/api/tasks/{res.json()['id']}/annotations/", json={"value": "a"}, timeout=60)
                t2 = time.perf_counter()
                errors += sub.status_code != 201
                next_ms.append(1000 * (t1 - t0))
                submit_ms.append(1000 * (t2 - t1))

    with tempfile.TemporaryDirectory() as tmp:
        web = Service("web", web_command("127.0.0.1", port, workers=args.workers), Path(tmp) / "web.log")
        with web:
            wait_http(web, f"{base}/readyz")
            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                results = list(pool.map(client, tokens))
            elapsed = time.perf_counter() - started
    next_ms = [v for r in results for v in r[0]]
    submit_ms = [v for r in results for v in r[1]]
    cycles = [a + b for r in results for a, b in zip(r[0], r[1], strict=True)]
    errors = sum(r[2] for r in results)
    print(
        f"{len(cycles)} cycles by {args.clients} clients in {elapsed:.1f} s: {len(cycles) / elapsed:.0f} cycles/s, "
        f"{errors} errors"
    )
    print("| request | p50 ms | p95 ms |\n| --- | --- | --- |")
    for name, values in (("next task", next_ms), ("submit", submit_ms), ("cycle", cycles)):
        print(f"| {name} | {statistics.median(values):.1f} | {percentile(values, 95):.1f} |")


if __name__ == "__main__":
    main()
