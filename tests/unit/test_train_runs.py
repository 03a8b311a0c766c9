"""Short real training runs of the bag of embeddings on the in-memory corpus: a resumed run gives the weights of an
uninterrupted one, early stopping ends a run that stopped improving, and configs read from YAML refuse bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import corpus_version, small_config
from training.config import ConfigError, ModelConfig, load_config
from training.train import TrainingError, train


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path: Path) -> None:
    data = corpus_version(400)
    whole = train(small_config(schedule="cosine"), data, out_dir=tmp_path / "whole")
    train(small_config(schedule="cosine"), data, out_dir=tmp_path / "cut", stop_after=1)
    assert len(json.loads((tmp_path / "cut" / "checkpoint" / "history.json").read_text())) == 1
    resumed = train(small_config(schedule="cosine"), data, out_dir=tmp_path / "cut", resume=True)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name

    with pytest.raises(TrainingError, match="another config.*lr"):
        train(small_config(lr=1e-4), data, out_dir=tmp_path / "cut", resume=True)
    with pytest.raises(TrainingError, match=r"another config \(model.embed_dim\)"):
        train(small_config(ModelConfig(embed_dim=32), schedule="cosine"), data, out_dir=tmp_path / "cut", resume=True)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(small_config(), data, out_dir=tmp_path / "never", resume=True)


def test_early_stopping_ends_a_run_that_stopped_improving(tmp_path: Path) -> None:
    data = corpus_version(300)
    result = train(small_config(lr=1e-9, patience=1, epochs=10), data)  # nothing learnt: no epoch beats the first
    assert result.stopped_early and len(result.history) == 2


def test_configs_read_yaml_with_overrides_and_refuse_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("task: spans\nmodel:\n  name: tagger\nepochs: 3\nlr: 0.01\n")
    config = load_config(path, ["epochs=5", "lr=1e-3", "schedule=cosine", "model.wide=true"], dataset="names-v1")
    assert config.model.wide is True and config.model.name == "tagger"
    assert (config.task, config.epochs, config.lr, config.schedule, config.dataset) == (
        "spans",
        5,
        0.001,
        "cosine",
        "names-v1",
    )
    for overrides, reason in (
        (["epochs=0"], "epochs: must be at least 1"),
        (["optimiser=lbfgs"], "optimiser: 'lbfgs' is not one of"),
        (["batchsize=3"], "unknown training config keys: \\['batchsize'\\]"),
        (["epochs=three"], "epochs: expected int"),
        (["lr"], "expected key=value"),
        (["model.wide=1"], "model.wide: expected true or false"),
        (["model.ngram_buckets=-1"], "model.ngram_buckets: cannot be negative"),
        (["model.subword_buckets=-5"], "model.subword_buckets: cannot be negative"),
        (["wide_l2=-0.5"], "wide_l2: cannot be negative"),
        (["wide=true"], "unknown training config keys: \\['wide'\\] \\(model keys go under model: model.wide"),
    ):
        with pytest.raises(ConfigError, match=reason):
            load_config(path, overrides)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
