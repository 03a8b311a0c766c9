"""The ``fsml`` console script, run as a user runs it, against the test database."""

from __future__ import annotations

import shutil
from pathlib import Path

from datastore.models import CrawlJob, Item
from deploy.demo.samplesite import SampleSiteServer
from tests.helpers import FSML
from tests.helpers import fsml as run


def test_help_lists_every_stage() -> None:
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("crawl", "dataset", "train", "export", "evaluate", "package", "worker", "submit", "demo", "web"):
        assert command in proc.stdout


def test_crawl_command_stores_items(live_env) -> None:
    assert shutil.which(FSML)
    with SampleSiteServer(limit=40, seed=21) as site:
        proc = run("crawl", "site", site.url, "--source", "cli-sample", "--extract", "/post/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = CrawlJob.objects.get(source__name="cli-sample")
    assert f"crawl job {job.pk}: finished" in proc.stdout
    assert Item.objects.filter(source=job.source).count() == job.items_stored > 30


def test_domain_errors_end_with_a_message_not_a_traceback(live_env) -> None:
    proc = run("crawl", "nosuchspider", "http://127.0.0.1:9/")
    assert proc.returncode == 2
    assert "unknown spider 'nosuchspider'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    missing = run("dataset", "snapshot", "no-such-project", "--name", "x")
    assert missing.returncode == 2 and "no project named 'no-such-project'" in missing.stdout


def test_package_puts_the_archive_in_the_store_and_registers_the_next_version(
    live_env, model_archive, tmp_path: Path
) -> None:
    import json

    from datastore.models import ModelVersion

    run_dir = model_archive[0].parent  # holds export/, as `fsml train` + `fsml export` leave a run folder
    proc = run("package", str(run_dir), "--name", "cli-model")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = run("package", str(run_dir), "--name", "cli-model")
    assert again.returncode == 0, again.stdout + again.stderr
    first, second = ModelVersion.objects.filter(name="cli-model").order_by("version")
    assert (first.version, second.version) == (1, 2) and first.archive_path != second.archive_path
    assert f"registered cli-model:1 -> {first.archive_path}" in proc.stdout.replace("\n", "")  # rich wraps lines
    assert Path(first.archive_path).is_file() and Path(first.archive_path).is_relative_to(Path(live_env["FSML_HOME"]))
    history = json.loads((run_dir / "export" / "manifest.json").read_text())["history"]
    assert first.metrics["val"]["accuracy"] == max(h["val_accuracy"] for h in history)
    assert "text_processing.py" in first.manifest["files"] and first.manifest["code_revision"]

    missing = run("package", str(tmp_path), "--name", "cli-model")
    assert missing.returncode == 2 and "holds no export" in " ".join(missing.stdout.split())
    bad_name = run("package", str(run_dir), "--name", "Bad Name!")
    assert bad_name.returncode == 2 and "model names must match" in " ".join(bad_name.stdout.split())
    assert "Traceback" not in missing.stderr + bad_name.stderr
    assert ModelVersion.objects.filter(name="cli-model").count() == 2, "refusals registered nothing"


def test_submit_without_a_token_is_refused_before_any_request(monkeypatch) -> None:
    monkeypatch.delenv("FSML_TOKEN", raising=False)
    # Port 9 (discard) answers nothing: a request made despite the missing token would end otherwise.
    proc = run("submit", "sentiment", "a text", "--url", "http://127.0.0.1:9/")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: an API token is needed (--token or FSML_TOKEN)" in " ".join(proc.stdout.split())
    assert "Traceback" not in proc.stdout + proc.stderr


def test_submit_to_a_server_that_does_not_answer_says_so(monkeypatch) -> None:
    monkeypatch.delenv("FSML_TOKEN", raising=False)
    proc = run("submit", "sentiment", "a text", "--url", "http://127.0.0.1:9/", "--token", "t0ken")
    said = " ".join(proc.stdout.split())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: no answer from http://127.0.0.1:9: ConnectionError" in said, said
    assert "Traceback" not in proc.stdout + proc.stderr


def test_evaluate_with_an_unknown_backend_is_refused(tmp_path) -> None:
    proc = run("evaluate", str(tmp_path), "corpus-v1:test", "--backend", "tflite")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: unknown backend 'tflite'; choose one of onnxruntime" in " ".join(proc.stdout.split())
    assert "Traceback" not in proc.stdout + proc.stderr


def test_resuming_an_unknown_crawl_job_is_refused(live_env) -> None:
    proc = run("crawl", "site", "http://127.0.0.1:9/", "--resume", "999")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "crawl job 999: no such crawl job to resume" in " ".join(proc.stdout.split())
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not CrawlJob.objects.exists(), "no job was started instead"


def test_web_refuses_to_serve_beyond_this_machine_with_debug_on(live_env, monkeypatch) -> None:
    from deploy.processes import free_port

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "fsml.settings.local")
    monkeypatch.setenv("DEBUG", "1")
    # A timeout rather than a hang should the refusal go: gunicorn would serve until killed.
    proc = run("web", "--host", "0.0.0.0", "--port", str(free_port()), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    message = " ".join(proc.stdout.split())
    assert "error: refusing to serve on 0.0.0.0 with DEBUG on" in message
    assert "DJANGO_SETTINGS_MODULE=fsml.settings.production" in message
    assert "Traceback" not in proc.stdout + proc.stderr


def test_user_unlock_lets_a_locked_out_account_sign_in_again(live_env) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    get_user_model().objects.create_user("ann", password="the right password 42")
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "ann", "password": f"guess {i}"})
    right = {"username": "ann", "password": "the right password 42"}
    assert client.post("/accounts/login/", right).status_code == 429
    proc = run("user", "unlock", "ann")
    assert proc.returncode == 0 and "ann unlocked" in proc.stdout, proc.stdout + proc.stderr
    assert client.post("/accounts/login/", right).status_code == 302
    again = run("user", "unlock", "ann")
    assert again.returncode == 0 and "ann was not locked out" in again.stdout
    nobody = run("user", "unlock", "nobody")
    assert nobody.returncode == 2 and "no user named 'nobody'" in nobody.stdout
