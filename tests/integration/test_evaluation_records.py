"""Stored evaluations on MariaDB: every prediction kept, cases filtered, two versions compared, exports, and a
wrong case sent back to the annotation queue (real DVC snapshots, real trained models)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from annotation.services import AnnotationError, next_task, send_back, set_role, submit
from datastore.loader import load
from datastore.models import Evaluation, Prediction, RelabelRequest, Task
from datastore.snapshot import snapshot_project
from evaluation.evaluate import EvaluationError, parse_target
from evaluation.records import (
    CaseFilter,
    cases,
    compare,
    iter_csv,
    iter_json,
    leaderboard,
    run_evaluation,
    write_export,
)
from tests.eval_helpers import LABELS, evaluated_project

pytestmark = pytest.mark.django_db


def test_an_evaluation_keeps_every_prediction_and_its_metrics(tmp_path: Path) -> None:
    ev = evaluated_project(tmp_path)
    first = ev.first
    test_split = load("v1", repo=str(ev.repo.root)).splits["test"]
    assert first.n == len(test_split) == first.predictions.count() > 30  # ~20% of 300: the hash split varies with ids
    predictions = list(first.predictions.all())
    assert {p.record_id for p in predictions} == {r["id"] for r in test_split}
    assert all(p.item_id is not None and p.text for p in predictions), "each case links to its item"
    accuracy = sum(p.correct for p in predictions) / len(predictions)
    assert first.score == pytest.approx(accuracy) == pytest.approx(first.metrics["accuracy"])
    matrix = first.metrics["confusion_matrix"]["matrix"]
    for i, true in enumerate(LABELS):  # every confusion-matrix cell is the count of its stored cases
        for j, predicted in enumerate(LABELS):
            assert matrix[i][j] == cases(first, CaseFilter(true=true, predicted=predicted)).count()
    assert {"ece", "rows"} <= set(first.metrics["calibration"]) and "top_1" in first.metrics["top_k"]
    assert ev.weak.__class__.objects.get(pk=ev.weak.pk).metrics["test"]["accuracy"] == first.score

    again = run_evaluation(ev.weak, ev.dataset, "test", ev.repo)  # the same triple again replaces it
    assert Evaluation.objects.filter(model_version=ev.weak).count() == 1 and again.pk != first.pk
    assert Prediction.objects.filter(evaluation_id=first.pk).count() == 0

    board = leaderboard()
    assert board["datasets"] == [(ev.dataset.pk, "v1")]
    assert [row["model"] for row in board["rows"]] == [ev.weak, ev.strong]
    assert board["rows"][1]["cells"][0][0].pk == ev.second.pk

    # Filters and their refusals
    wrong = cases(ev.second, CaseFilter(correct=False))
    assert wrong.count() == ev.second.n - round(ev.second.score * ev.second.n)
    sure = cases(ev.second, CaseFilter.from_query({"min_confidence": "0.6", "order": "-confidence"}))
    values = [p.confidence for p in sure]
    assert values == sorted(values, reverse=True) and all(v >= 0.6 for v in values)
    some_case = ev.second.predictions.first()
    assert some_case is not None
    word = some_case.text.split()[0]
    found = cases(ev.second, CaseFilter.from_query({"q": word}))
    assert found.count() >= 1 and all(word.lower() in p.text.lower() for p in found)
    for params, message in (
        ({"outcome": "maybe"}, "outcome must be right or wrong"),
        ({"min_confidence": "high"}, "min_confidence must be a number"),
        ({"max_confidence": "1.5"}, "max_confidence must be between 0 and 1"),
        ({"order": "text"}, "order must be one of"),
    ):
        with pytest.raises(EvaluationError, match=message):
            CaseFilter.from_query(params)
    assert parse_target("v1") == ("v1", "test") and parse_target("v1:val") == ("v1", "val")
    with pytest.raises(EvaluationError, match="unknown split 'dev'"):
        parse_target("v1:dev")


def test_compare_and_export(tmp_path: Path) -> None:
    ev = evaluated_project(tmp_path)
    diff = compare(ev.first, ev.second)
    for mine, theirs in diff["fixed"]:
        assert not mine.correct and theirs.correct and mine.record_id == theirs.record_id
    for mine, theirs in diff["broken"]:
        assert mine.correct and not theirs.correct
    fixed, broken = len(diff["fixed"]), len(diff["broken"])
    right_first = ev.first.predictions.filter(correct=True).count()
    assert right_first - broken + fixed == ev.second.predictions.filter(correct=True).count()
    val = run_evaluation(ev.strong, ev.dataset, "val", ev.repo)
    with pytest.raises(EvaluationError, match="one dataset version and split"):
        compare(ev.first, val)

    document = json.loads("".join(iter_json(ev.first)))
    assert document["model"] == str(ev.weak) and document["dataset"] == "v1" and document["split"] == "test"
    assert len(document["predictions"]) == ev.first.n and document["metrics"]["accuracy"] == ev.first.score
    rows = list(csv.DictReader(io.StringIO("".join(iter_csv(ev.first)))))
    assert len(rows) == ev.first.n and rows[0]["true_label"] in LABELS
    assert json.loads(rows[0]["true_value"]) == rows[0]["true_label"]
    write_export(ev.first, tmp_path / "out" / "e.csv")
    assert (tmp_path / "out" / "e.csv").read_text().count("\n") >= ev.first.n + 1
    with pytest.raises(EvaluationError, match="export to .json or .csv"):
        write_export(ev.first, tmp_path / "e.xlsx")


def test_a_wrong_case_goes_back_to_the_queue_and_the_next_version_takes_the_new_label(tmp_path: Path) -> None:
    ev = evaluated_project(tmp_path)
    users = get_user_model().objects
    annotator, reviewer = users.create(username="ann"), users.create(username="rev")
    set_role(ev.project, annotator, "annotator")
    set_role(ev.project, reviewer, "reviewer")
    case = ev.second.predictions.filter(correct=False).select_related("item").first()
    assert case is not None
    task = Task.objects.get(project=ev.project, item=case.item)
    gold = task.final_value

    with pytest.raises(AnnotationError, match="reason of 1 to 500"):
        send_back(task.pk, reviewer, "  ", case)
    with pytest.raises(AnnotationError, match="needs the role manager or reviewer"):
        send_back(task.pk, annotator, "looks mislabelled", case)
    assert Task.objects.get(pk=task.pk).final_value == gold, "a refused request changes nothing"

    request = send_back(task.pk, reviewer, "the model says otherwise and it looks right", case)
    assert request.previous["final_value"] == gold and request.prediction == case
    task.refresh_from_db()
    assert (task.status, task.final_value, task.annotation_count) == ("open", None, 0)
    with pytest.raises(AnnotationError, match="already sent back"):
        send_back(task.pk, reviewer, "again", case)

    # The next snapshot leaves it out until someone labels it again; then it takes the new label.
    assert case.record_id not in {r["id"] for r in _records(ev, "v2")}
    assignment = next_task(ev.project, annotator)
    assert assignment is not None and assignment.task_id == task.pk
    new_label = next(label for label in LABELS if label != gold)
    submit(task.pk, annotator, new_label)
    record = next(r for r in _records(ev, "v3") if r["id"] == case.record_id)
    assert record["label"] == new_label
    assert RelabelRequest.objects.filter(task=task).count() == 1


def _records(ev, name: str) -> list[dict]:
    snapshot_project(ev.project, name, ev.repo)
    data = load(name, repo=str(ev.repo.root))
    return [r for split in data.splits.values() for r in split]


def test_metrics_of_two_splits_recorded_from_stale_rows_are_both_kept() -> None:
    from datastore import services
    from datastore.models import ModelVersion

    model = services.register_model_version(
        "m", "text_classification", "/nowhere.tar.gz", "0" * 64, {"metrics": {"val": {"accuracy": 0.5}}}, None
    )
    # Two evaluations loaded the row before either recorded anything.
    first, second = ModelVersion.objects.get(pk=model.pk), ModelVersion.objects.get(pk=model.pk)
    services.record_model_metrics(first, "val", {"accuracy": 0.7})
    services.record_model_metrics(second, "test", {"accuracy": 0.6})
    stored = ModelVersion.objects.get(pk=model.pk).metrics
    assert stored == {"val": {"accuracy": 0.7}, "test": {"accuracy": 0.6}}
    assert second.metrics == stored  # the caller's instance is brought up to date too
