"""The model zoo: shapes, overfitting one batch, padding invariance, ONNX export and parity under ONNX Runtime."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelConfig
from training.export import export_onnx, save_program
from training.models import MODELS, build_model, example_input, input_spec
from training.models.bag import BagOfEmbeddings

# Same FP32 tolerances as training/export.py; every model meets them (observed max diff is ~5e-7).
RTOL, ATOL = 1e-3, 1e-5
# Appending padding may change BLAS blocking, hence float summation order, but nothing more.
PADDING_ATOL = 1e-5
VOCAB, NUM_OUTPUTS, MAX_LEN, IMAGE_SIZE = 40, 5, 32, 16

# "+bigrams": the bag of embeddings with hashed bigram embeddings (ngram_buckets), run through every test too;
# "+subwords": with the character n-grams of a made-up vocabulary's tokens as well (subword_buckets).
CASES = [(task, name) for task, models in MODELS.items() for name in models]
CASES += [
    (task, f"bag_of_embeddings+{variant}")
    for task in ("text_classification", "multi_label")
    for variant in ("bigrams", "subwords")
]
TEXT_CASES = [case for case in CASES if input_spec(case[0]).name == "input_ids"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Run these tiny models on one thread: on a busy 2-core box, intra-op threads spin-wait for each other and
    make the overfitting loops ~10x slower than a single thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ids_of(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]}"


def model_config(name: str, **hparams: Any) -> ModelConfig:
    """The config of a case's model (``bag_of_embeddings+bigrams`` and ``+subwords`` set their buckets)."""
    name, _, variant = name.partition("+")
    if variant == "bigrams":
        hparams |= {"ngram_buckets": 64, "wide": True}
    if variant == "subwords":
        hparams |= {"ngram_buckets": 64, "subword_buckets": 32, "wide": True}
    return ModelConfig(name=name, max_len=MAX_LEN, **hparams)


def make(task: str, name: str, **hparams: Any) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(task, model_config(name, **hparams), NUM_OUTPUTS, VOCAB)
    if isinstance(model, BagOfEmbeddings):
        model.set_subwords(["<pad>", "<unk>", *(f"word{i}" for i in range(2, VOCAB))])  # no-op without subwords
    return model


def padded_ids(batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    """(B, T) right-padded token ids; row 0 is full length, the others have random lengths in [1, T]."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (batch, seq), generator=gen)
    lengths = torch.randint(1, seq + 1, (batch,), generator=gen)
    lengths[0] = seq
    return ids.masked_fill(torch.arange(seq)[None, :] >= lengths[:, None], 0)


def inputs_for(task: str, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    if input_spec(task).name == "input_ids":
        return padded_ids(batch, seq, seed)
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, IMAGE_SIZE, IMAGE_SIZE, generator=gen)


def expected_shape(task: str, batch: int, seq: int) -> tuple[int, ...]:
    return (batch, seq, NUM_OUTPUTS) if input_spec(task).output_rank == 3 else (batch, NUM_OUTPUTS)


def task_loss(task: str, logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if task == "multi_label":
        return F.binary_cross_entropy_with_logits(logits, targets)
    if task == "spans":
        real = inputs != 0  # (B, T): padding positions carry no tag
        return F.cross_entropy(logits[real], targets[real])
    return F.cross_entropy(logits, targets)


def random_targets(task: str, inputs: torch.Tensor) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    batch = inputs.shape[0]
    if task == "multi_label":
        return (torch.rand(batch, NUM_OUTPUTS, generator=gen) > 0.5).float()
    if task == "spans":
        return torch.randint(0, NUM_OUTPUTS, inputs.shape, generator=gen)
    return torch.randint(0, NUM_OUTPUTS, (batch,), generator=gen)


@pytest.mark.parametrize("case", CASES, ids=ids_of)
def test_forward_shape(case: tuple[str, str]) -> None:
    task, name = case
    model = make(task, name).eval()
    with torch.no_grad():
        logits = model(inputs_for(task, 3, 11))
    assert logits.shape == expected_shape(task, 3, 11)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("case", CASES, ids=ids_of)
def test_overfits_one_batch(case: tuple[str, str]) -> None:
    task, name = case
    model = make(task, name, dropout=0.0).train()
    inputs = inputs_for(task, 16, 10)
    targets = random_targets(task, inputs)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = task_loss(task, model(inputs), inputs, targets)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], f"loss went {losses[0]:.3f} -> {losses[-1]:.3f}"


@pytest.mark.parametrize("case", TEXT_CASES, ids=ids_of)
def test_appending_padding_does_not_change_logits(case: tuple[str, str]) -> None:
    task, name = case
    model = make(task, name).eval()
    ids = padded_ids(6, 10)
    longer = torch.cat([ids, torch.zeros(6, 7, dtype=torch.long)], dim=1)  # (B, T + 7)
    with torch.no_grad():
        short_logits, long_logits = model(ids), model(longer)
    if input_spec(task).output_rank == 3:  # per-token: compare the real tokens only
        real = ids != 0
        short_logits, long_logits = short_logits[real], long_logits[:, : ids.shape[1]][real]
    torch.testing.assert_close(long_logits, short_logits, rtol=0, atol=PADDING_ATOL)


@pytest.mark.parametrize("case", TEXT_CASES, ids=ids_of)
def test_fully_padded_row_is_finite(case: tuple[str, str]) -> None:
    task, name = case
    model = make(task, name).eval()
    ids = padded_ids(3, 8)
    ids[1] = 0
    with torch.no_grad():
        assert torch.isfinite(model(ids)).all()


@pytest.mark.parametrize("name", ["cnn", "tagger"])
@pytest.mark.parametrize("kernel_size", [4, 5])
@pytest.mark.parametrize("seq", [1, 2])
def test_convolutions_accept_sequences_shorter_than_the_kernel(name: str, kernel_size: int, seq: int) -> None:
    task = "spans" if name == "tagger" else "text_classification"
    model = make(task, name, kernel_size=kernel_size).eval()
    with torch.no_grad():
        logits = model(padded_ids(2, seq))
    assert logits.shape == expected_shape(task, 2, seq)


@pytest.mark.parametrize("case", CASES, ids=ids_of)
def test_the_config_rebuilds_the_model(case: tuple[str, str]) -> None:
    """The config alone gives a model every saved weight and buffer fits (load_state_dict is strict)."""
    task, name = case
    model = make(task, name, layers=3, channels=8).eval()
    torch.manual_seed(1)  # other initial weights: only the loaded state can make the outputs equal
    rebuilt = build_model(task, model_config(name, layers=3, channels=8), NUM_OUTPUTS, VOCAB).eval()
    rebuilt.load_state_dict(model.state_dict())
    inputs = inputs_for(task, 2, 6)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(inputs), model(inputs))


@pytest.mark.filterwarnings("ignore")  # the exporter warns about torchvision ops and deprecations
@pytest.mark.parametrize("case", CASES, ids=ids_of)
def test_onnx_export_matches_pytorch(case: tuple[str, str], tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    task, name = case
    spec = input_spec(task)
    model = make(task, name).eval()
    torch.manual_seed(0)
    example = example_input(task, batch=3, seq=12, vocab_size=VOCAB, image_size=IMAGE_SIZE)
    path = tmp_path / "model.onnx"
    assert export_onnx(model, example, path, spec.name, seq_axis=1 in spec.dynamic_axes) == "dynamo"
    assert not (tmp_path / "model.onnx.data").exists()
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    # Control flow (what nn.EmbeddingBag exports to) runs far slower under ONNX Runtime; the zoo exports flat graphs.
    assert not {node.op_type for node in proto.graph.node} & {"Loop", "Scan", "If"}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    seq_lengths = (5, 23) if spec.name == "input_ids" else (0,)  # images: the batch axis alone is dynamic
    for batch in (1, 7):
        for seq in seq_lengths:
            inputs = inputs_for(task, batch, seq, seed=batch + seq)
            with torch.no_grad():
                expected = model(inputs).numpy()
            got = session.run(None, {spec.name: inputs.numpy()})[0]
            assert got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def test_bigrams_make_word_order_count() -> None:
    """Mean and max pooling ignore order; hashed bigrams are what lets the bag tell "not good" from "good not"."""
    plain, bigrams = (
        make("text_classification", "bag_of_embeddings").eval(),
        make("text_classification", "bag_of_embeddings+bigrams").eval(),
    )
    ids = torch.tensor([[3, 7, 11, 0], [11, 7, 3, 0]])
    with torch.no_grad():
        torch.testing.assert_close(plain(ids)[0], plain(ids)[1])
        assert not torch.allclose(bigrams(ids)[0], bigrams(ids)[1])
    assert isinstance(bigrams, BagOfEmbeddings)
    rows = bigrams.bigram_ids(ids)
    assert rows[:, 2:].eq(0).all(), "a bigram with padding in it is padding"
    assert rows[:, :2].ge(VOCAB).all() and rows.lt(VOCAB + 64).all()


def test_subwords_tie_related_tokens_and_travel_with_the_weights() -> None:
    """Each vocabulary token's character n-grams are rows of the model: "love" and "loved" share some, padding and
    unknown have none, and the table is part of the state dict, so a rebuilt model needs no vocabulary."""
    from training.models.bag import SUBWORDS_PER_TOKEN, char_ngrams

    assert char_ngrams("hi") == ["<hi", "hi>", "<hi>"]
    assert len(char_ngrams("extraordinarily")) > SUBWORDS_PER_TOKEN  # long words keep their shortest n-grams
    tokens = ["<pad>", "<unk>", "love", "loved", "table", *(f"w{i}" for i in range(5, VOCAB))]
    config = ModelConfig(subword_buckets=4096)
    model = build_model("text_classification", config, NUM_OUTPUTS, VOCAB)
    assert isinstance(model, BagOfEmbeddings)
    model.set_subwords(tokens)
    table = model.subword_ids
    assert table[:2].eq(0).all()
    love, loved, other = (set(table[i].tolist()) - {0} for i in (2, 3, 4))
    assert len(love & loved) >= 3 and not love & other  # <lo, lov, ove: shared; "table" has none of them
    used = table[table != 0]
    assert used.ge(VOCAB).all() and used.lt(VOCAB + 4096).all()  # rows after the tokens' own
    rebuilt = build_model("text_classification", config, NUM_OUTPUTS, VOCAB)
    assert isinstance(rebuilt, BagOfEmbeddings)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.equal(rebuilt.subword_ids, table)
    with pytest.raises(ValueError, match="tokens for a model of vocab_size"):
        model.set_subwords(tokens[:-1])


@pytest.mark.parametrize("task", ["text_classification", "multi_label"])
def test_folded_subwords_give_the_same_logits_and_never_go_stale(task: str) -> None:
    model = make(task, "bag_of_embeddings+subwords").eval()
    ids = padded_ids(5, 9)
    ids[1, :] = 0  # a row of padding only
    ids[2, :3] = 1  # unknown tokens: no n-grams
    with torch.no_grad():
        plain = model(ids)
        model.fold_subwords()  # type: ignore[operator]
        assert "folded_sum" in dict(model.named_buffers())
        torch.testing.assert_close(model(ids), plain, rtol=1e-5, atol=1e-6)
        unknown_only = torch.tensor([[1, 1, 1]])  # no token has n-grams: the subword group pools to zeros
        assert model(unknown_only).abs().max() < 100, "no -1e4 feature leaks into the logits"
    model.fold_subwords()  # type: ignore[operator]
    model.load_state_dict(model.state_dict())  # new weights in eval mode drop the tables too
    assert not model.training and "folded_sum" not in dict(model.named_buffers())
    model.fold_subwords()  # type: ignore[operator]
    model.train()  # training drops the tables: the weights are about to change
    assert not {"folded_sum", "folded_wide"} & set(dict(model.named_buffers()))
    assert "folded_sum" not in model.state_dict()


@pytest.mark.parametrize("case", CASES, ids=ids_of)
def test_torch_export_program_keeps_dynamic_axes(case: tuple[str, str], tmp_path: Path) -> None:
    """model.pt2 (PyTorch serving) must accept every batch size and, for text, every length, 1 included."""
    task, name = case
    spec = input_spec(task)
    model = make(task, name).eval()
    example = example_input(task, batch=3, seq=12, vocab_size=VOCAB, image_size=IMAGE_SIZE)
    save_program(model, example, tmp_path / "model.pt2", spec.name, seq_axis=1 in spec.dynamic_axes)
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    for batch, seq in ((1, 1), (5, 2), (2, 30)):
        inputs = inputs_for(task, batch, seq if spec.name == "input_ids" else 0, seed=seq)
        with torch.no_grad():
            torch.testing.assert_close(program(inputs), model(inputs), rtol=RTOL, atol=ATOL)


def test_input_specs() -> None:
    for task in ("text_classification", "multi_label"):
        spec = input_spec(task)
        assert (spec.name, spec.dtype, spec.dynamic_axes, spec.output_rank) == ("input_ids", "int64", (0, 1), 2)
    assert input_spec("spans").output_rank == 3
    image = input_spec("image_classification")
    assert (image.name, image.dtype, image.dynamic_axes) == ("pixels", "float32", (0,))
    assert list(image.dynamic_shapes()["pixels"]) == [0]
    assert input_spec("spans").onnx_dynamic_axes() == {
        "input_ids": {0: "batch", 1: "seq"},
        "logits": {0: "batch", 1: "seq"},
    }
    assert input_spec("text_classification").onnx_dynamic_axes()["logits"] == {0: "batch"}


def test_unknown_names_raise_value_error_listing_the_choices() -> None:
    with pytest.raises(ValueError, match="image_classification"):
        build_model("translation", ModelConfig(name="cnn"), NUM_OUTPUTS, VOCAB)
    with pytest.raises(ValueError, match="tagger"):
        build_model("spans", ModelConfig(name="transformer"), NUM_OUTPUTS, VOCAB)
    with pytest.raises(ValueError, match="bag_of_embeddings, cnn, transformer"):
        build_model("text_classification", ModelConfig(name="resnet"), NUM_OUTPUTS, VOCAB)
    with pytest.raises(ValueError, match="multi_label"):
        input_spec("translation")


def test_bad_sizes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        build_model("text_classification", ModelConfig(name="cnn"), NUM_OUTPUTS)
    with pytest.raises(ValueError, match="divisible"):
        build_model("text_classification", ModelConfig(name="transformer", embed_dim=30, heads=4), NUM_OUTPUTS, VOCAB)
    with pytest.raises(ValueError, match="num_outputs"):
        build_model("image_classification", ModelConfig(name="cnn"), 0)
