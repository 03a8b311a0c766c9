"""The training script under torchrun (two processes, one writer) and ``fsml train``, run as a user runs them on a
real dataset version. The runs in this process are in tests/integration/test_train_tasks.py and tests/unit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datastore.dvcrepo import DataRepo
from datastore.snapshot import snapshot_project
from deploy.demo.corpora import sentiment_corpus
from tests.annotation_helpers import project_with_gold
from training.checkpoint import load_checkpoint


@pytest.mark.slow
@pytest.mark.django_db
def test_torchrun_with_two_processes_and_the_cli(tmp_path: Path) -> None:
    rows = [{"text": r.text, "value": r.label} for r in sentiment_corpus(limit=600, seed=4)]
    project = project_with_gold("text_classification", ["negative", "neutral", "positive"], rows)
    repo = DataRepo(tmp_path / "data", str(tmp_path / "remote"))
    snapshot_project(project, "v1", repo)
    config = tmp_path / "text.yaml"
    config.write_text(
        f"dataset: v1\ndata_repo: {repo.root}\nmodel:\n  name: cnn\nepochs: 2\nbatch_size: 32\nmin_freq: 1\n"
    )
    bin_dir = Path(sys.executable).parent

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, timeout=600, env=env)

    ddp = run(
        "torchrun",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "training",
        str(config),
        "--out",
        str(tmp_path / "ddp"),
        "lr=0.005",
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    summary = json.loads(ddp.stdout.strip().splitlines()[-1])  # rank 0 alone prints it
    assert summary["epochs"] == 2 and summary["export"] == "model.onnx"
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2  # one writer, not two
    assert load_checkpoint(tmp_path / "ddp" / "checkpoint").config.lr == 0.005

    cli = run("fsml", "train", str(config), "--out", str(tmp_path / "cli"), "--set", "epochs=1")
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert (tmp_path / "cli" / "export" / "model.int8.onnx").is_file()
    bad = run("fsml", "train", str(config), "--out", str(tmp_path / "bad"), "--set", "epochs=zero")
    assert bad.returncode != 0 and "epochs: expected int" in bad.stdout + bad.stderr
