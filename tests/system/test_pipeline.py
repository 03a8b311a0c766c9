"""The DVC pipeline (snapshot -> train -> export -> evaluate) run with the real `dvc repro` and `fsml` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.contrib.auth import get_user_model

from annotation.services import create_project, import_records
from datastore.models import DatasetVersion
from tests.helpers import gold_rows

BIN = Path(sys.executable).parent


def dvc(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(BIN / "dvc"), *args], cwd=folder, capture_output=True, text=True, timeout=600, env=env, check=False
    )


def ran(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """Stages `dvc repro` ran (it prints "Running stage 'NAME':")."""
    return [line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_repro_reruns_what_changed_and_metrics_diff_compares(live_env, tmp_path: Path) -> None:
    manager = get_user_model().objects.create(username="manager", is_staff=True)
    project = create_project("reviews", "text_classification", ["negative", "neutral", "positive"], [])
    import_records(project, manager, gold_rows(limit=400, seed=3))  # gold labels: the project is ready to snapshot
    folder = tmp_path / "research"
    init = subprocess.run(
        [str(BIN / "fsml"), "pipeline", "init", str(folder), "--project", "reviews", "--dataset", "reviews-v1"]
        + ["--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    params = yaml.safe_load((folder / "params.yaml").read_text())
    assert params["data_repo"] == str(Path(settings.FSML_HOME, "data").resolve())

    first = dvc(folder, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert ran(first) == ["snapshot", "train", "export", "evaluate"]
    assert DatasetVersion.objects.filter(name="reviews-v1").exists()
    evaluated = json.loads((folder / "metrics" / "evaluate.json").read_text())
    assert evaluated["n"] > 0 and 0 <= evaluated["accuracy"] <= 1
    assert (folder / "runs" / "export" / "model.onnx").is_file()
    again = dvc(folder, "repro")  # nothing changed: nothing runs
    assert again.returncode == 0 and ran(again) == [], again.stdout
    for step in (["add", "-A"], ["commit", "-q", "-m", "first run"]):  # as a researcher commits a run
        assert subprocess.run(["git", *step], cwd=folder, capture_output=True, check=False).returncode == 0

    params["train"]["epochs"] = 3
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = dvc(folder, "repro")
    assert second.returncode == 0, second.stdout + second.stderr
    assert ran(second) == ["train", "export", "evaluate"]  # the snapshot's params did not change
    assert json.loads((folder / "metrics" / "train.json").read_text())["epochs"] == 3
    diff = dvc(folder, "metrics", "diff", "--json")
    assert diff.returncode == 0, diff.stderr
    changed = json.loads(diff.stdout)
    assert changed["metrics/train.json"]["epochs"] == {"old": 2, "new": 3, "diff": 1}
