"""What the ``fsml`` command prints, run as a user runs it: JSON for scripts, JSON Lines from submit, warnings and
refusals for an empty validation split, a failed crawl's reason, and third-party chatter only with -v."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings

from datastore.models import CrawlJob
from deploy.demo.corpora import sentiment_corpus
from tests.annotation_helpers import project_with_gold
from tests.helpers import corpus_version
from tests.helpers import fsml as run

LABELS = ["negative", "neutral", "positive"]
DVC_CHATTER = "To track the changes with git"


def test_snapshot_list_show_and_the_refusals_of_an_empty_validation_split(live_env, tmp_path: Path) -> None:
    rows = [{"text": r.text, "value": r.label} for r in sentiment_corpus(limit=40, seed=3)]
    project = project_with_gold("text_classification", LABELS, rows)

    snap = run("dataset", "snapshot", project.name, "--name", "out-noval", "--val-pct", "0")
    assert snap.returncode == 0, snap.stdout + snap.stderr
    assert "warning: out-noval: the val split is empty" in snap.stderr and "--val-pct above 0" in snap.stderr
    assert snap.stdout.startswith("dataset version out-noval: train ") and "val 0" in snap.stdout
    assert DVC_CHATTER not in snap.stdout + snap.stderr, "DVC's notes stay in the log without -v"
    assert DVC_CHATTER in (Path(live_env["FSML_HOME"]) / "logs" / "fsml.log").read_text()
    # A third of the ~40 records in val (the split hashes item ids, which differ between runs): never empty.
    loud = run("-v", "dataset", "snapshot", project.name, "--name", "out-loud", "--val-pct", "34")
    assert loud.returncode == 0 and DVC_CHATTER in loud.stderr

    listed = run("dataset", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = {v["name"]: v for v in json.loads(listed.stdout)}
    assert versions["out-noval"]["counts"]["val"] == 0 and versions["out-noval"]["project"] == project.name
    assert versions["out-loud"]["counts"]["val"] > 0 and len(versions["out-loud"]["md5"]) > 30
    table = run("dataset", "list").stdout.splitlines()
    assert table[0].split() == ["name", "project", "train", "val", "test", "md5", "git", "created", "(UTC)", "by"]
    assert len(table) == 3 and table[1].split()[:2] == ["out-noval", project.name], "one row per version, unwrapped"
    projects = json.loads(run("project", "list", "--json").stdout)
    assert [(p["name"], p["tasks"], p["done"]) for p in projects] == [(project.name, 40, 40)]
    shown = run("dataset", "show", "out-noval")
    assert shown.returncode == 0 and "the val split is empty" in shown.stderr
    assert json.loads(run("dataset", "show", "out-noval", "--json").stdout)["warnings"][0].startswith("the val split")

    refused = run("train", "out-noval", "--out", str(tmp_path / "refused"), "--epochs", "1")
    assert refused.returncode == 2 and "has no validation records" in refused.stdout, refused.stdout + refused.stderr
    # A run trained elsewhere whose config names the version: the export has no val record to check it with.
    from training.checkpoint import save_checkpoint
    from training.config import TrainConfig
    from training.train import train

    config = TrainConfig(dataset="out-noval", data_repo=str(settings.DVC_REPO_DIR), epochs=1)
    save_checkpoint(train(config, corpus_version(200)), tmp_path / "run" / "checkpoint")
    exported = run("export", str(tmp_path / "run"))
    assert exported.returncode == 2, exported.stdout + exported.stderr
    assert "error: dataset version out-noval has no records in its val split" in exported.stdout
    assert "Traceback" not in exported.stdout + exported.stderr + refused.stderr
    assert not (tmp_path / "run" / "export" / "model.onnx").exists()


def test_a_crawl_that_fetched_nothing_fails_with_the_reason(live_env) -> None:
    proc = run("crawl", "site", "http://127.0.0.1:9/", "--source", "dead-port")  # nothing listens on port 9
    job = CrawlJob.objects.get(source__name="dead-port")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert job.status == CrawlJob.Status.FAILED and job.stats["reason"].startswith("nothing was fetched")
    said = " ".join(proc.stdout.split())
    assert f"error: crawl job {job.pk}: failed: nothing was fetched: 1 connection refused" in said, said
    assert "dict_keys" not in said and "Traceback" not in proc.stdout + proc.stderr
    listed = json.loads(run("crawls", "--json").stdout)
    assert listed[0]["id"] == job.pk and listed[0]["status"] == "failed" and listed[0]["reason"] == job.stats["reason"]
    assert listed[0]["skipped"] == {"DownloadConnectionRefusedError": 1}


class FakeJobsApi(BaseHTTPRequestHandler):
    """The two calls of ``fsml submit``: POST /api/jobs/ queues a job, GET /api/jobs/ID/ answers it, done."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.answer(201, {"id": f"job-{len(body['inputs']['text'])}", "status": "queued"})

    def do_GET(self) -> None:
        job_id = self.path.rstrip("/").rsplit("/", 1)[1]
        scores = {f"a-long-label-name-{i}": i / 10 for i in range(8)}  # a result far wider than 80 columns
        self.answer(200, {"id": job_id, "status": "succeeded", "result": {"scores": scores}, "error": None})

    def answer(self, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # quiet: the test reads the command's output, not the server's
        pass


@pytest.fixture
def jobs_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeJobsApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_submit_prints_one_json_object_per_line(jobs_api: str) -> None:
    proc = run("submit", "sentiment@production", "one", "three", "--url", jobs_api, "--token", "t0ken")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    jobs = [json.loads(line) for line in lines]  # JSON Lines: each line a whole object, however long
    assert [j["id"] for j in jobs] == ["job-3", "job-5"] and all(j["status"] == "succeeded" for j in jobs)
    assert set(jobs[0]) == {"id", "status", "result", "error", "worker"} and max(map(len, lines)) > 200
