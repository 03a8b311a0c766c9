"""The command line's output rules without a database: tables, JSON Lines, where log records go, skip reasons in
words, and the warnings and refusals for an empty validation split."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from datastore.loader import LoadedVersion
from datastore.services.crawls import describe_skips, nothing_fetched_reason, skip_reason_text
from datastore.splits import empty_split_warnings
from datastore.versions import describe
from deploy.console import print_json_line, print_table
from deploy.logs import setup_logging
from tests.helpers import corpus_version


def test_a_table_off_a_terminal_keeps_every_row_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    long = "x" * 150
    print_table(["name", "n"], [["a", 1], [long, None]], numeric=("n",))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].split() == ["name", "n"] and lines[2].split() == [long, "-"]


def test_json_lines_are_never_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    records = [{"id": i, "result": {"text": "word " * 60}} for i in range(2)]
    for record in records:
        print_json_line(record)
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == records


@pytest.fixture
def cli_logging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """setup_logging's effects for one test, the root logger's handlers and levels restored after it."""
    monkeypatch.setenv("FSML_HOME", str(tmp_path))
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("dvc").level)
    yield tmp_path / "logs" / "fsml.log"
    for handler in list(root.handlers):
        handler.close()
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.getLogger("dvc").setLevel(saved[2])
    logging.captureWarnings(False)


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_records_reach_the_terminal_only_with_verbose(
    cli_logging: Path, capsys: pytest.CaptureFixture[str], verbose: bool
) -> None:
    from training.export import torch_logs_to_logging  # local: it imports torch

    setup_logging(verbose)
    torch_logs_to_logging()  # as every export does: torch's records join the logging tree
    logging.getLogger("torch.onnx").warning("torchvision is not installed. Skipping torchvision::nms")
    logging.getLogger("dvc.repo.scm_context").info("To track the changes with git, run: git add")
    logging.warning("Please consider to run pre-processing before quantization")  # ONNX Runtime logs on the root
    logging.getLogger("training.export").warning("no INT8 model: a reason")
    err = capsys.readouterr().err
    assert "no INT8 model" in err, "fsml's own warnings always show"
    for chatter in ("torchvision is not installed", "To track the changes", "pre-processing before quantization"):
        assert (chatter in err) is verbose, (chatter, err)
        assert chatter in cli_logging.read_text(), "the log file keeps every record"


def test_skip_reasons_in_words() -> None:
    assert skip_reason_text("http_404") == "HTTP 404"
    assert skip_reason_text("DownloadConnectionRefusedError") == "connection refused"
    assert skip_reason_text("invalid_url") == "invalid url" and skip_reason_text("SomethingNew") == "SomethingNew"
    stats = {
        "failures": {"http_404": ["http://a/x", "http://a/y"], "DownloadConnectionRefusedError": ["http://b/"]},
        "fsml/skipped/http_404": 17,
    }
    assert describe_skips(stats) == "17 HTTP 404, 1 connection refused (DownloadConnectionRefusedError)"
    assert describe_skips({"failures": "dict_keys(['X'])"}) == describe_skips({}) == "none"
    assert nothing_fetched_reason({}) == "nothing was fetched: no page answered"
    assert nothing_fetched_reason(stats).endswith(", e.g. http://a/x")


def empty_val(data: LoadedVersion) -> LoadedVersion:
    return LoadedVersion(data.name, data.manifest, {**data.splits, "val": []})


def test_an_empty_val_or_test_split_is_warned_about() -> None:
    assert empty_split_warnings({"train": 5, "val": 3, "test": 2}) == []
    val, test = empty_split_warnings({"train": 5, "val": 0})
    assert val.startswith("the val split is empty") and test.startswith("the test split is empty")
    info = describe(empty_val(corpus_version(200)))
    assert info["warnings"][0].startswith("the val split is empty"), info["warnings"]


def test_training_and_export_refuse_a_version_without_validation_records(tmp_path: Path) -> None:
    from training.config import TrainConfig
    from training.export import ExportError, export
    from training.train import TrainingError, train

    data = corpus_version(200)
    with pytest.raises(TrainingError, match="has no validation records"):
        train(TrainConfig(dataset="corpus", epochs=1), empty_val(data))
    result = train(TrainConfig(dataset="corpus", epochs=1), data)
    nothing = LoadedVersion("corpus", data.manifest, {"val": []})  # as `fsml export` loads it: the val split only
    with pytest.raises(ExportError, match="corpus has no records in its val split") as refused:
        export(result, tmp_path / "export", nothing)
    assert refused.value.split == "val" and not (tmp_path / "export" / "model.onnx").exists()
