"""Model archives in an S3 model store (moto's S3 server standing in for MinIO): versions are immutable; a worker
with an empty cache fetches its model from the bucket; an object replaced behind the registry's back is refused by
its checksum. The folder store is tested in tests/unit/test_modelstore.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from datastore import services
from datastore.models import InferenceJob
from modelpack.archive import ArchiveError
from modelpack.runtime import load_runtime
from modelpack.store import S3Store, StoreError, model_store

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    pytest.importorskip("s3fs", reason="the s3 extra is not installed")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    from deploy.processes import free_port

    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_an_s3_store_serves_workers_and_refuses_a_replaced_object(
    live_env: dict[str, str],
    clean_broker: None,  # the worker started here must not take messages an earlier test left in the queue
    s3_endpoint: str,
    model_archive: Any,
    settings: Any,
    tmp_path: Path,
    monkeypatch: Any,
) -> None:
    import boto3

    from deploy import stages
    from deploy.processes import Service, wait_log, worker_command
    from serving.web.submit import submit_job
    from tests.processes import wait_done

    settings.MODEL_STORE, settings.MODEL_STORE_ENDPOINT = "s3://fsml-models/archives", s3_endpoint
    settings.MODEL_CACHE_DIR = tmp_path / "cache-web"
    export_dir = model_archive[0].parent / "export"
    model = stages.package_and_register(export_dir, "s3model", None, {})
    assert model.archive_path == "s3://fsml-models/archives/s3model/s3model-1.tar.gz"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    stored = s3.get_object(Bucket="fsml-models", Key="archives/s3model/s3model-1.tar.gz")["Body"].read()
    assert len(stored) > 1000  # the bucket did not exist: the first archive made it

    # A worker on "another machine": its own empty cache, the bucket its only source of the model.
    for key, value in {"FSML_HOME": str(tmp_path / "worker-home"), "FSML_MODEL_STORE_ENDPOINT": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    worker = Service("worker", worker_command(concurrency=1, name=f"s3-{os.getpid()}@%h"), tmp_path / "worker.log")
    with worker:
        wait_log(worker, "ready.", timeout=90)
        user = get_user_model().objects.create(username="svc")
        texts = ["a great flight", "lost my bag again"]
        jobs = wait_done([str(submit_job(user, "s3model", {"text": t})[0].pk) for t in texts])
    runtime = load_runtime(services.unpacked_model(model))
    assert len(jobs) == len(texts)
    for job in jobs:
        assert job.status == InferenceJob.Status.SUCCEEDED, job.error
        assert job.result == runtime.predict([job.inputs["text"]])[0].as_dict() and job.model_version_id == model.pk
    assert (tmp_path / "worker-home" / "model-cache" / "s3model" / "1" / "manifest.json").is_file()
    assert not list((tmp_path / "worker-home" / "model-cache" / "s3model").glob("*.tar.gz")), "download removed"

    # Versions are immutable: the store refuses a second archive under the same key.
    store = model_store(settings.MODEL_STORE, s3_endpoint)
    assert isinstance(store, S3Store)
    with pytest.raises(StoreError, match="already exists"):
        store.put(model_archive[0], "s3model/s3model-1.tar.gz")
    # Two writers that both found no object: the second one's write is refused by the server, not applied.
    monkeypatch.setattr(store.fs, "exists", lambda path: path == store.bucket)
    with pytest.raises(StoreError, match="written meanwhile"):
        store.put(model_archive[0], "s3model/s3model-1.tar.gz")
    assert s3.get_object(Bucket="fsml-models", Key="archives/s3model/s3model-1.tar.gz")["Body"].read() == stored
    # An object replaced behind the registry's back (one flipped byte) is refused by its checksum.
    flipped = bytearray(stored)
    flipped[len(flipped) // 2] ^= 0x01
    s3.put_object(Bucket="fsml-models", Key="archives/s3model/s3model-1.tar.gz", Body=bytes(flipped))
    settings.MODEL_CACHE_DIR = tmp_path / "cache-fresh"
    with pytest.raises(ArchiveError, match="archive checksum does not match the registry"):
        services.unpacked_model(model)
    assert not (tmp_path / "cache-fresh" / "s3model" / "1").exists(), "nothing of a refused archive is kept"
    # A model whose object is gone says so.
    s3.delete_object(Bucket="fsml-models", Key="archives/s3model/s3model-1.tar.gz")
    with pytest.raises(StoreError, match="object not found"):
        services.unpacked_model(model)
