"""Training, export and the shared runtime, on the real shipped corpus (no database)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from datastore.loader import collate_text
from evaluation.evaluate import evaluate
from modelpack.archive import unpack
from modelpack.inputs import InputError
from modelpack.runtime import load_runtime
from tests.helpers import corpus_version
from training.checkpoint import load_checkpoint, save_checkpoint
from training.config import ConfigError, ModelConfig, TrainConfig, load_config
from training.export import export
from training.models import BagOfEmbeddings, TextCNN
from training.train import train


def test_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    data = corpus_version(300)
    vocab = data.build_vocab(min_freq=1)
    ds = data.text_dataset("train", vocab)
    ids, labels = collate_text([ds[i] for i in range(32)])  # (32, T), (32,)
    model = BagOfEmbeddings(ModelConfig(embed_dim=32, hidden_dim=32, dropout=0.0), len(vocab), 3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(ids), labels)
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.05
    assert (model(ids).argmax(-1) == labels).all()


def test_padding_does_not_change_predictions() -> None:
    model = BagOfEmbeddings(ModelConfig(embed_dim=8, hidden_dim=8, dropout=0.0), 50, 3).eval()
    ids = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    assert torch.allclose(model(ids), model(padded), atol=1e-6)


def test_short_training_beats_majority_and_export_matches_pytorch(tmp_path: Path) -> None:
    data = corpus_version(2500)
    result = train(TrainConfig(dataset="corpus", epochs=5, seed=0), data)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    report = export(result, tmp_path / "export", data)
    assert report.max_abs_diff < 1e-4
    # The INT8 copy is scored on the same records; it stays within a few points here (the benchmark
    # measures it on the whole test split).
    assert report.int8_file and report.size_int8 < report.size_fp32 / 2
    assert report.score_int8 is not None and report.score_fp32 is not None and report.int8_agreement is not None
    assert abs(report.score_int8 - report.score_fp32) < 0.05 and report.int8_agreement > 0.9

    scored = evaluate(tmp_path / "export", data=data, split="test")
    metrics = scored["metrics"]
    assert metrics["accuracy"] > metrics["majority_rate"] + 0.08, metrics

    # The runtime's predictions are PyTorch's predictions.
    runtime = load_runtime(tmp_path / "export")
    texts = [r["text"] for r in data.splits["test"][:50]]
    assert result.vocab is not None  # a text model
    with torch.no_grad():
        expected = result.model(torch.from_numpy(result.vocab.encode_batch(texts, 64))).argmax(-1).numpy()
    got = np.array([runtime.labels.index(p.label) for p in runtime.predict(texts)])
    assert (got == expected).all()


def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path: Path) -> None:
    """The model config is the one source of the model's shape: saved whole in the checkpoint, it alone rebuilds
    the model the weights fit, and the YAML beside it reads back to the same config."""
    data = corpus_version(400)
    overrides = ["model.name=cnn", "model.embed_dim=24", "model.channels=16", "model.kernel_size=5"]
    result = train(load_config(None, overrides, dataset="corpus", epochs=1), data)
    assert isinstance(result.model, TextCNN) and result.model.embed.embedding_dim == 24
    save_checkpoint(result, tmp_path / "ckpt")
    saved = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)["config"]
    assert saved["model"] == asdict(ModelConfig(name="cnn", embed_dim=24, channels=16, kernel_size=5))
    again = load_checkpoint(tmp_path / "ckpt")
    assert again.config == result.config and again.config.labels == ["negative", "neutral", "positive"]
    assert load_config(tmp_path / "ckpt" / "config.yaml") == result.config
    assert result.vocab is not None  # a text model
    ids = torch.from_numpy(result.vocab.encode_batch(["what a great flight", "awful"], 64))
    assert torch.equal(result.model(ids), again.model(ids))


def test_config_overrides_reach_the_nested_model_config(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("task: spans\nmodel:\n  name: tagger\n  layers: 3\nepochs: 3\nlr: 0.01\n")
    config = load_config(path, ["epochs=5", "lr=1e-3", "model.embed_dim=48", "model.wide=true"], dataset="names-v1")
    assert (config.task, config.epochs, config.lr, config.dataset) == ("spans", 5, 0.001, "names-v1")
    assert config.model == ModelConfig(name="tagger", layers=3, embed_dim=48, wide=True)
    assert load_config(None, ["model.dropout=0"]).model.dropout == 0.0  # an int where a float is expected


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (["embed_dim=64"], r"keys: \['embed_dim'\] \(model keys go under model: model.embed_dim\)"),
        (["model.embeddim=64"], r"unknown training config keys: \['model.embeddim'\]; known keys: .*'model.embed_dim'"),
        (["batchsize=3"], r"unknown training config keys: \['batchsize'\]"),
        (["model=cnn"], "model: expected a mapping .* model.name=NAME picks the model"),
        (["model.embed_dim=0"], "model.embed_dim: must be at least 1, got 0"),
        (["model.layers=two"], "model.layers: expected int, got 'two'"),
        (["model.wide=1"], "model.wide: expected true or false"),
        (["model.ngram_buckets=-1"], "model.ngram_buckets: cannot be negative"),
        (["model.dropout=1.5"], r"model.dropout: must be in \[0, 1\)"),
        (["lr=0"], "lr: must be positive"),
        (["wide_l2=-0.5"], "wide_l2: cannot be negative"),
    ],
)
def test_bad_config_keys_and_values_are_refused_by_name(overrides: list[str], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        load_config(None, overrides)


def test_runtime_rejects_bad_inputs(model_archive, tmp_path: Path) -> None:
    archive, sha, _ = model_archive
    unpack(archive, tmp_path / "m", expected_sha256=sha)
    runtime = load_runtime(tmp_path / "m")
    for bad, reason in (
        ([], "non-empty list"),
        ([""], "empty text"),
        ([3], "got int"),
        (["x" * 20_001], "longer than"),
    ):
        with pytest.raises(InputError, match=reason):
            runtime.predict(bad)
