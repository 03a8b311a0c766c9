"""Longer training runs in this process: every task type from a real dataset version (database -> DVC snapshot ->
loader) trained, exported, served and evaluated, and the subword, wide and distilled variants of the bag of
embeddings (too long for the unit tier's minute). The same script under torchrun is in tests/system."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import torch
from torch import nn

from annotation.services import create_project
from datastore import services
from datastore.dvcrepo import DataRepo
from datastore.loader import load
from datastore.models import Project, Task
from datastore.snapshot import snapshot_project
from deploy.demo.corpora import mnist_digits, sentiment_corpus
from evaluation.evaluate import evaluate, headline
from modelpack.inputs import InputError
from modelpack.runtime import load_runtime
from modelpack.text import tokenize_with_offsets
from tests.annotation_helpers import project_with_gold
from tests.helpers import corpus_version, small_config
from training.checkpoint import load_checkpoint
from training.config import ModelConfig, TrainConfig
from training.export import export
from training.models.bag import BagOfEmbeddings
from training.optim import make_optimiser, wide_penalty
from training.tasks import prepare
from training.train import TrainingError, train

WORDS = {
    "delay": ["late", "delayed", "waited"],
    "service": ["crew", "staff", "rude"],
    "price": ["fee", "price", "paid"],
}
FILLER = ["the", "flight", "was", "and", "we", "then", "our", "trip", "today", "again"]
PEOPLE, PLACES = ["alice", "bob", "carol", "dan", "erin"], ["paris", "rome", "oslo", "lima", "kyiv"]


def multi_label_records(n: int) -> list[dict]:
    """Texts whose labels are the keyword groups they mention: learnable, with any mix of labels."""
    rng, rows = random.Random(0), []
    for i in range(n):
        labels = sorted(rng.sample(list(WORDS), rng.randint(1, 2)))
        words = rng.sample(FILLER, 4) + [rng.choice(WORDS[label]) for label in labels] + [f"n{i}"]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "value": labels})
    return rows


def span_records(n: int) -> list[dict]:
    """Sentences naming a person and a place, with their character spans."""
    rng, rows = random.Random(0), []
    for i in range(n):
        who, where = rng.choice(PEOPLE), rng.choice(PLACES)
        text = f"{rng.choice(['yesterday', 'today', 'then'])} {who} flew to {where} number {i}"
        start, place = text.index(who), text.index(f" {where}") + 1
        spans = [{"start": start, "end": start + len(who), "label": "PER"}]
        spans.append({"start": place, "end": place + len(where), "label": "LOC"})
        rows.append({"text": text, "value": spans})
    return rows


def image_project(tmp_path: Path, n: int) -> Project:
    digits = mnist_digits(limit=n, seed=2)
    items = services.import_images("mnist", [(d.name, d.png) for d in digits], tmp_path / "uploads")
    project = create_project("p-image", "image_classification", [str(i) for i in range(10)], items)
    for item, digit in zip(items, digits, strict=True):  # gold labels, as an import of labelled images gives
        Task.objects.filter(project=project, item=item).update(final_value=digit.label, status=Task.Status.DONE)
    return project


CASES = {
    "text_classification": ("cnn", 0.5),  # 3 classes; the majority class is about 0.45
    "multi_label": ("bag_of_embeddings", 0.8),  # micro F1 on keyword labels
    "spans": ("tagger", 0.8),  # span F1 on names and places
    "image_classification": ("cnn", 0.4),  # 10 digits from 500 images; chance is 0.1
}


@pytest.mark.django_db
@pytest.mark.parametrize("task_type", list(CASES))
def test_each_task_type_trains_from_a_dataset_version_and_exports(task_type: str, tmp_path: Path) -> None:
    if task_type == "text_classification":
        rows = [{"text": r.text, "value": r.label} for r in sentiment_corpus(limit=900, seed=3)]
        project = project_with_gold(task_type, ["negative", "neutral", "positive"], rows)
    elif task_type == "multi_label":
        project = project_with_gold(task_type, list(WORDS), multi_label_records(300))
    elif task_type == "spans":
        project = project_with_gold(task_type, ["PER", "LOC"], span_records(300))
    else:
        project = image_project(tmp_path, 500)
    repo = DataRepo(tmp_path / "data", str(tmp_path / "remote"))
    snapshot_project(project, "v1", repo)
    data = load("v1", repo=str(repo.root), images=task_type == "image_classification")
    model, floor = CASES[task_type]
    config = TrainConfig(
        task=task_type, model=ModelConfig(name=model), dataset="v1", epochs=6, lr=5e-3, min_freq=1, batch_size=32
    )
    run = tmp_path / "run"
    result = train(config, data, out_dir=run)

    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert max(row["val_score"] for row in result.history) > floor, result.history
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert any((run / "tensorboard").iterdir()) and (run / "training_curve.png").stat().st_size > 1000

    report = export(load_checkpoint(run / "checkpoint"), run / "export", data)  # ParityError past rtol/atol
    assert report.exporter == "dynamo" and report.parity_batches >= 2, report
    assert report.int8_file is not None and report.int8_agreement is not None and report.int8_agreement > 0.8, report
    manifest = json.loads((run / "export" / "manifest.json").read_text())
    assert manifest["task"] == task_type and manifest["labels"] == data.labels

    # The serving runtime preprocesses raw inputs (texts, image files) exactly as training did.
    records = data.splits["test"][:32]
    raw = [data.images[r["image"]] if task_type == "image_classification" else r["text"] for r in records]
    runtime = load_runtime(run / "export")
    assert result.task is not None
    with torch.no_grad():
        expected = result.model(result.task.batch(records, data)[0]).numpy()
    got: np.ndarray | list[np.ndarray] = runtime.logits(raw)
    if task_type == "spans":  # the model also scores padding positions; compare real tokens only
        lengths = [len(tokenize_with_offsets(cast(str, t))[: config.model.max_len]) for t in raw]  # spans: texts
        expected = [row[:n] for row, n in zip(expected, lengths, strict=True)]
        got = [row[:n] for row, n in zip(got, lengths, strict=True)]
    for a, b in zip(got, expected, strict=True):
        assert np.allclose(a, b, rtol=1e-3, atol=1e-4)
    predictions = runtime.predict(raw)
    assert len(predictions) == len(raw) and all(0 <= p.confidence <= 1 for p in predictions)
    bad, reason = (b"GIF89a broken", "not a readable image") if task_type == "image_classification" else ("", "empty")
    with pytest.raises(InputError, match=f"input 1: .*{reason}"):
        runtime.predict([raw[0], bad])
    if task_type == "spans":
        assert all(isinstance(p.label, list) for p in predictions)
        assert any(p.label for p in predictions), "a trained tagger finds some names and places"

    # Evaluation scores every task type through the same runtime, keeping each prediction.
    scored = evaluate(run / "export", data=data, split="test")
    score, macro_f1 = headline(task_type, scored["metrics"])
    assert scored["metrics"]["task"] == task_type and 0 <= macro_f1 <= 1
    assert len(scored["predictions"]) == len(data.splits["test"]) and score > floor - 0.1, scored["metrics"]
    assert any(c["correct"] for c in scored["predictions"])


def bag_of(model: nn.Module) -> BagOfEmbeddings:
    """The bag of embeddings small_config trains, typed: nn.Module's stub types buffers as ``Tensor | Module``."""
    assert isinstance(model, BagOfEmbeddings)
    return model


def wide_of(model: nn.Module) -> nn.Embedding:
    """The wide term of a bag built with ``model.wide``."""
    wide = bag_of(model).wide
    assert wide is not None
    return wide


BIGRAMS = ModelConfig(ngram_buckets=512, wide=True)


def test_subword_model_trains_reloads_exports_and_serves_the_same_logits(tmp_path: Path) -> None:
    """The subword table is built from the run's vocabulary, saved with the weights and baked into the ONNX graph:
    the serving runtime, which only tokenises and looks up ids, gives the trained model's logits."""
    data = corpus_version(400)
    config = small_config(ModelConfig(ngram_buckets=512, subword_buckets=1024, wide=True), epochs=2, min_freq=1)
    result = train(config, data, out_dir=tmp_path / "run")
    assert bag_of(result.model).subword_ids[2:].ne(0).any(dim=1).all(), "every real token has n-grams"
    reloaded = load_checkpoint(tmp_path / "run" / "checkpoint")
    assert torch.equal(bag_of(reloaded.model).subword_ids, bag_of(result.model).subword_ids)
    export(reloaded, tmp_path / "export", data)  # raises ParityError past the stated tolerance
    texts = [r["text"] for r in data.splits["test"][:16]]
    assert result.task is not None
    with torch.no_grad():
        expected = result.model.eval()(result.task.batch(data.splits["test"][:16], data)[0]).numpy()
    np.testing.assert_allclose(load_runtime(tmp_path / "export").logits(texts), expected, rtol=1e-3, atol=1e-4)


def test_wide_term_trains_apart_as_logistic_regression(tmp_path: Path) -> None:
    """wide_lr and wide_l2 give the wide term its own optimiser group (own learning rate, no weight decay) and an
    L2 penalty in the loss; the model, its checkpoint and its export are those of any wide bag."""
    data = corpus_version(400)
    config = small_config(BIGRAMS, epochs=2, wide_lr=0.02, wide_l2=0.5, weight_decay=0.05)
    model = prepare(config, data).new_model()
    deep, wide = make_optimiser(config, model).param_groups
    assert [p.shape for p in wide["params"]] == [wide_of(model).weight.shape]
    assert (wide["lr"], wide["weight_decay"], deep["lr"], deep["weight_decay"]) == (0.02, 0.0, config.lr, 0.05)
    assert sum(p.numel() for p in deep["params"]) + wide_of(model).weight.numel() == sum(
        p.numel() for p in model.parameters()
    )
    with torch.no_grad():
        wide_of(model).weight.fill_(2.0)
    expected = 0.5 * 4.0 * wide_of(model).weight.numel() / 100
    penalty = wide_penalty(config, model, 100)
    assert penalty is not None and float(penalty.detach()) == pytest.approx(expected)
    plain = small_config(BIGRAMS)
    assert len(make_optimiser(plain, model).param_groups) == 1 and wide_penalty(plain, model, 100) is None

    result = train(config, data, out_dir=tmp_path / "run")
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert wide_of(result.model).weight.abs().sum() > 0
    export(load_checkpoint(tmp_path / "run" / "checkpoint"), tmp_path / "export", data, int8=False)


def test_distillation_trains_a_student_from_a_teacher_run(tmp_path: Path) -> None:
    data = corpus_version(500)
    train(small_config(ModelConfig(name="cnn"), epochs=2), data, out_dir=tmp_path / "teacher")
    student = train(small_config(epochs=2, teacher=str(tmp_path / "teacher")), data)
    assert student.vocab is not None and student.history[-1]["val_score"] > 0.4
    with pytest.raises(TrainingError, match="no checkpoint.pt"):
        train(small_config(teacher=str(tmp_path / "nowhere")), data)
