"""``fsml evaluate``, run as a user runs it: a registered version scored on a dataset version's split, stored,
exported, and bad references refused with a message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from datastore.models import Evaluation
from tests.eval_helpers import evaluated_project
from tests.helpers import fsml


def test_the_cli_evaluates_a_registered_version_and_stores_it(
    live_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = evaluated_project(tmp_path, n=300)
    monkeypatch.setenv("FSML_HOME", str(tmp_path))  # the CLI finds the data repository at FSML_HOME/data
    out, metrics = tmp_path / "cases.csv", tmp_path / "metrics.json"
    proc = fsml("evaluate", str(ev.strong), "v1:val", "--export", str(out), "--metrics", str(metrics))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stored = Evaluation.objects.get(model_version=ev.strong, split="val")
    assert f"evaluation {stored.pk}" in proc.stdout and f"/evaluations/{stored.pk}/" in proc.stdout
    assert len(list(csv.DictReader(out.open()))) == stored.n > 0
    assert json.loads(metrics.read_text())["accuracy"] == pytest.approx(stored.score)
    for args, message in (
        ((str(ev.strong), "v1:dev"), "unknown split 'dev'"),
        ((str(ev.strong), "v9"), "no dataset version named 'v9'"),
        (("sentiment:9", "v1"), "unknown model 'sentiment:9'"),
        ((str(ev.strong), "v1", "--export", str(tmp_path / "x.xlsx")), "export to .json or .csv"),
    ):
        bad = fsml("evaluate", *args)
        assert bad.returncode == 2 and message in bad.stdout, bad.stdout + bad.stderr
        assert "Traceback" not in bad.stdout + bad.stderr
