"""What differs between task types: how records become tensors, the loss, the validation metrics and the
export's example inputs, and the model each builds. The training loop (training.train) is the same for all of
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from torch import nn
from torch.nn import functional as F

from datastore.loader import ImageClassificationDataset, LoadedVersion
from modelpack.runtime import TEXT_CODE_FILE
from modelpack.text import Vocabulary, bio_tags, pad, spans_to_tags, tags_to_spans, tokenize_with_offsets
from training.config import TrainConfig
from training.models import BagOfEmbeddings, build_model, input_spec

IGNORE = -100  # the target of padding tokens: cross_entropy skips it


class RecordsDataset(torch.utils.data.Dataset):
    """(inputs, target) per record, built once."""

    def __init__(self, rows: list[tuple[Any, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: int) -> tuple[Any, Any]:
        return self.rows[idx]


@dataclass
class Task:
    """One task type. ``outputs`` are the names of the model's outputs: labels, or BIO tags for spans."""

    name: str
    labels: list[str]
    outputs: list[str]
    vocab: Vocabulary | None
    config: TrainConfig

    # -- data --------------------------------------------------------------------------------------------
    def dataset(self, data: LoadedVersion, split: str) -> RecordsDataset:
        return RecordsDataset(self._rows(data.splits[split], data))

    def batch(self, records: list[dict[str, Any]], data: LoadedVersion) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for some records (the export's parity and accuracy checks use it)."""
        return self.collate(self._rows(records, data))

    def _rows(self, records: list[dict[str, Any]], data: LoadedVersion) -> list[tuple[Any, Any]]:
        """(inputs, target) per record, before padding."""
        raise NotImplementedError

    def collate(self, batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    # -- learning ----------------------------------------------------------------------------------------
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Hinton et al.'s soft-label loss: KL between temperature-softened distributions, times T^2."""
        t = self.config.distill_temperature
        soft = F.kl_div(F.log_softmax(student / t, -1), F.softmax(teacher / t, -1), reduction="batchmean")
        return soft * t * t

    def predict(self, logits: torch.Tensor) -> np.ndarray:
        return logits.argmax(-1).cpu().numpy()

    def metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
        """Validation metrics; ``score`` is the one early stopping and model selection follow."""
        y_pred, y_true = np.concatenate(predicted), np.concatenate(targets)
        acc = float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0
        f1 = float(f1_score(y_true, y_pred, average="macro", labels=range(len(self.labels)), zero_division=0))
        return {"accuracy": acc, "macro_f1": f1, "score": acc}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, device: str) -> dict[str, float]:
        """``metrics`` and the mean loss of ``model`` over a loader's batches (``score`` 0 when it has none)."""
        model.eval()
        predicted, targets, loss_sum, batches = [], [], 0.0, 0
        for inputs, target in loader:
            logits = model(inputs.to(device))
            loss_sum, batches = loss_sum + float(self.loss(logits, target.to(device))), batches + 1
            predicted.append(self.predict(logits))
            targets.append(target.numpy())
        return {"loss": loss_sum / max(batches, 1), **self.metrics(predicted, targets)} if batches else {"score": 0.0}

    def input_name(self) -> str:
        """The models' input, also the ONNX input's name: ``input_ids`` or ``pixels``."""
        return input_spec(self.name).name

    def new_model(self) -> nn.Module:
        """A fresh model of ``config.model`` sized for this task's outputs and vocabulary; a bag of embeddings
        with ``subword_buckets`` gets the vocabulary's subword table."""
        vocab_size = len(self.vocab) if self.vocab is not None else 0
        model = build_model(self.name, self.config.model, len(self.outputs), vocab_size)
        if isinstance(model, BagOfEmbeddings) and self.vocab is not None:
            model.set_subwords(self.vocab.tokens)  # a no-op without subword_buckets
        return model

    def preprocessing(self) -> dict[str, Any]:
        # "code": the tokeniser, vocabulary and span decoding travel with the model (export copies the module).
        return {
            "tokenizer": "modelpack.text.tokenize",
            "code": TEXT_CODE_FILE,
            "vocab": "vocab.json",
            "max_len": self.config.model.max_len,
        }


class TextClassification(Task):
    def _rows(self, records: list[dict[str, Any]], data: LoadedVersion) -> list[tuple[list[int], Any]]:
        index = {label: i for i, label in enumerate(self.labels)}
        assert self.vocab is not None
        return [(self.vocab.encode(r["text"], self.config.model.max_len), index[r["label"]]) for r in records]

    def collate(self, batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = pad([tokens for tokens, _ in batch])  # (B, T)
        return torch.from_numpy(ids), torch.tensor([target for _, target in batch])


class MultiLabel(TextClassification):
    """Each label on or off: one logit per label, binary cross-entropy, a 0.5 threshold."""

    def _rows(self, records: list[dict[str, Any]], data: LoadedVersion) -> list[tuple[list[int], np.ndarray]]:
        index = {label: i for i, label in enumerate(self.labels)}
        assert self.vocab is not None
        rows = []
        for r in records:
            target = np.zeros(len(self.labels), dtype=np.float32)
            target[[index[x] for x in r["label"]]] = 1.0
            rows.append((self.vocab.encode(r["text"], self.config.model.max_len), target))
        return rows

    def collate(self, batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = pad([tokens for tokens, _ in batch])  # (B, T)
        return torch.from_numpy(ids), torch.from_numpy(np.stack([target for _, target in batch]))  # (B, L)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, targets)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = self.config.distill_temperature
        return F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t)) * t * t

    def predict(self, logits: torch.Tensor) -> np.ndarray:
        return (logits > 0).cpu().numpy().astype(np.float32)  # sigmoid(x) > 0.5

    def metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
        y_pred, y_true = np.concatenate(predicted), np.concatenate(targets)
        micro = float(f1_score(y_true, y_pred, average="micro", zero_division=0))
        macro = float(f1_score(y_true, y_pred, average="macro", zero_division=0))
        exact = float((y_pred == y_true).all(axis=1).mean()) if len(y_true) else 0.0
        return {"micro_f1": micro, "macro_f1": macro, "exact_match": exact, "score": micro}


class Spans(Task):
    """Span labelling as BIO tagging of ``modelpack.text`` tokens; scored by exact span match."""

    def _rows(self, records: list[dict[str, Any]], data: LoadedVersion) -> list[tuple[list[int], list[int]]]:
        index = {tag: i for i, tag in enumerate(self.outputs)}
        assert self.vocab is not None
        rows = []
        for r in records:
            offsets = tokenize_with_offsets(r["text"])[: self.config.model.max_len]
            ids = self.vocab.encode(r["text"], self.config.model.max_len)
            tags = [index[t] for t in spans_to_tags(offsets, r["label"])] or [index["O"]]
            rows.append((ids, tags))
        return rows

    def collate(self, batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = pad([tokens for tokens, _ in batch])  # (B, T)
        tags = np.full(ids.shape, IGNORE, dtype=np.int64)
        for i, (_, row) in enumerate(batch):
            tags[i, : len(row)] = row
        return torch.from_numpy(ids), torch.from_numpy(tags)  # (B, T), (B, T)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)  # (B*T, C)

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        keep = targets.flatten() != IGNORE  # padding tokens carry no knowledge
        return super().distill_loss(student.flatten(0, 1)[keep], teacher.flatten(0, 1)[keep], targets)

    def predict(self, logits: torch.Tensor) -> np.ndarray:
        return logits.argmax(-1).cpu().numpy()  # (B, T)

    def metrics(self, predicted: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float]:
        """Token accuracy over real tokens and span-level precision/recall/F1 (exact start, end and label)."""
        found = gold = hit = correct_tokens = tokens = 0
        for pred_batch, true_batch in zip(predicted, targets, strict=True):
            for pred, true in zip(pred_batch, true_batch, strict=True):
                real = true != IGNORE
                tokens += int(real.sum())
                correct_tokens += int((pred[real] == true[real]).sum())
                p, t = (
                    _tag_spans([self.outputs[i] for i in pred[real]]),
                    _tag_spans([self.outputs[i] for i in true[real]]),
                )
                found, gold, hit = found + len(p), gold + len(t), hit + len(p & t)
        precision, recall = hit / max(found, 1), hit / max(gold, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        return {
            "token_accuracy": correct_tokens / max(tokens, 1),
            "span_precision": precision,
            "span_recall": recall,
            "span_f1": f1,
            "score": f1,
        }


def _tag_spans(tags: list[str]) -> set[tuple[int, int, str]]:
    """(first token, last token, label) of each span in a BIO tag sequence."""
    offsets = [("", i, i + 1) for i in range(len(tags))]
    return {(s["start"], s["end"], s["label"]) for s in tags_to_spans(offsets, tags)}


class ImageClassification(Task):
    def _rows(self, records: list[dict[str, Any]], data: LoadedVersion) -> list[tuple[Any, Any]]:
        dataset = ImageClassificationDataset(
            records, data.images, self.labels, self.config.image_size, self.config.model.image_channels
        )
        return [dataset[i] for i in range(len(dataset))]  # decoded once, not every epoch

    def collate(self, batch: list[tuple[Any, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = torch.from_numpy(np.stack([p for p, _ in batch]))  # (B, C, H, W)
        return pixels, torch.tensor([label for _, label in batch])

    def preprocessing(self) -> dict[str, Any]:
        mode = "L" if self.config.model.image_channels == 1 else "RGB"
        return {
            "image_size": self.config.image_size,
            "channels": self.config.model.image_channels,
            "mode": mode,
            "scale": 1 / 255,
        }


TASKS: dict[str, type[Task]] = {
    "text_classification": TextClassification,
    "multi_label": MultiLabel,
    "spans": Spans,
    "image_classification": ImageClassification,
}


def make_task(config: TrainConfig, labels: list[str], vocab: Vocabulary | None) -> Task:
    """The task of ``config.task`` for a label set; text tasks need the vocabulary."""
    outputs = bio_tags(labels) if config.task == "spans" else list(labels)
    return TASKS[config.task](config.task, list(labels), outputs, vocab, config)


def prepare(config: TrainConfig, data: LoadedVersion, vocab: Vocabulary | None = None) -> Task:
    """Check that the version suits the config and build the task (and the vocabulary from train only)."""
    if data.task_type != config.task:
        raise ValueError(f"dataset {data.name} holds {data.task_type} data; the config asks for task {config.task}")
    if config.task != "image_classification" and vocab is None:
        vocab = Vocabulary.build((r["text"] for r in data.splits["train"]), config.min_freq, config.max_vocab)
    return make_task(config, data.labels, vocab if config.task != "image_classification" else None)
