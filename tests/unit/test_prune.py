"""Global magnitude pruning on small trained models: sparsity, masks during fine-tuning, export afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from tests.tiny_models import TinyConvNet, accuracy, export, text_data, trained_bag_classifier
from training.prune import PruneError, make_permanent, measure, prune_magnitude, prune_with_masks


@pytest.fixture
def text_model() -> nn.Module:
    return trained_bag_classifier()  # trained once per process; each test prunes its own copy


def zeros_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """Where each weight is zero, as the forward pass sees it (with masks attached, ``weight`` is orig * mask)."""
    return {name: m.weight.detach() == 0 for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def test_reaches_requested_sparsity_and_reports_sizes(text_model: nn.Module):
    x, y = text_data(512, seed=2)
    before = accuracy(text_model, x, y)
    report = prune_magnitude(text_model, 0.8)

    assert report.permanent
    assert set(report.layer_sparsity) == {"hidden.weight", "out.weight"}  # embeddings are not pooled by default
    assert report.overall_sparsity == pytest.approx(0.8, abs=1 / 1000)
    assert (cast(nn.Embedding, text_model.embed).weight[1:] != 0).all()  # untouched (row 0 is the padding row)
    assert report.parameters == sum(p.numel() for p in text_model.parameters())
    assert report.nonzero == sum(int(p.count_nonzero()) for p in text_model.parameters())
    # Zeros do not shrink dense storage, only the compressed file.
    assert abs(report.dense_bytes - report.dense_bytes_before) < 512
    assert report.compressed_bytes < report.compressed_bytes_before
    assert not any(k.endswith(("_orig", "_mask")) for k in text_model.state_dict())
    assert accuracy(text_model, x, y) >= before - 0.05
    print(f"prune 0.8: acc {before:.3f} -> {accuracy(text_model, x, y):.3f}, {report}")


def test_including_embeddings_starves_the_linear_layers(text_model: nn.Module):
    # Why embeddings are out of the pool by default: N(0, 1) embeddings set the global threshold.
    report = prune_magnitude(text_model, 0.5, layers=(nn.Linear, nn.Embedding))
    assert report.overall_sparsity == pytest.approx(0.5, abs=1 / 1000)
    assert report.layer_sparsity["hidden.weight"] > 0.95 > report.layer_sparsity["embed.weight"]
    assert report.warnings  # a layer pruned to nearly nothing is called out


def test_masks_keep_zeros_through_fine_tuning_then_export(text_model: nn.Module, tmp_path: Path):
    report = prune_with_masks(text_model, 0.6)
    assert not report.permanent
    assert report.dense_bytes > report.dense_bytes_before  # weight_orig and weight_mask are both saved
    pruned = zeros_of(text_model)
    # The zeros the forward pass sees are the fraction asked for: without them the checks below hold vacuously.
    zeros, total = sum(int(z.sum()) for z in pruned.values()), sum(z.numel() for z in pruned.values())
    assert set(pruned) == {"hidden", "out"} and zeros / total == pytest.approx(0.6, abs=1 / 1000)
    assert report.overall_sparsity == pytest.approx(0.6, abs=1 / 1000)
    assert all(z.any() for z in pruned.values()), "global pruning leaves no pooled layer untouched here"

    x, y = text_data(512, seed=7)
    opt = torch.optim.SGD(text_model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    text_model.train()
    for _ in range(10):
        loss = nn.functional.cross_entropy(text_model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    text_model.eval()
    for name, mask in zeros_of(text_model).items():  # still zero wherever the mask said so
        assert mask[pruned[name]].all(), name

    assert make_permanent(text_model) == 2
    assert make_permanent(text_model) == 0
    for name, mask in zeros_of(text_model).items():
        assert mask[pruned[name]].all(), name

    path = export(text_model, x[:2], tmp_path / "pruned.onnx")  # dynamo exporter, dynamic batch and seq
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 64):
        ids = x[:batch]
        got = session.run(None, {"input_ids": ids.numpy()})[0]
        with torch.inference_mode():
            want = text_model(ids).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


def test_conv_layers_are_pruned_globally():
    torch.manual_seed(0)
    model = TinyConvNet()  # sparsity does not depend on training, so an initialised net will do
    report = prune_magnitude(model, 0.7)
    assert set(report.layer_sparsity) == {"conv1.weight", "conv2.weight", "head.weight"}
    assert report.overall_sparsity == pytest.approx(0.7, abs=1 / 500)
    assert (model.conv2.weight == 0).float().mean() > 0.3


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, "0.5", True, float("nan")])
def test_bad_amount_is_refused(text_model: nn.Module, amount: object):
    with pytest.raises(PruneError) as info:
        prune_magnitude(text_model, amount)  # type: ignore[arg-type]  # wrong types on purpose
    assert info.value.field == "amount"
    assert not any(k.endswith("_orig") for k in text_model.state_dict())  # nothing was half-done


def test_no_matching_layers_is_refused():
    with pytest.raises(PruneError, match="no such layers"):
        prune_magnitude(nn.Sequential(nn.ReLU()), 0.5)


def test_zero_amount_changes_nothing(text_model: nn.Module):
    before = {k: v.clone() for k, v in text_model.state_dict().items()}
    report = prune_magnitude(text_model, 0.0)
    assert report.overall_sparsity == 0.0
    for key, value in text_model.state_dict().items():
        assert torch.equal(value, before[key])


def test_measure_reports_size_sparsity_and_latency(text_model: nn.Module):
    x, _ = text_data(64, seed=8)
    dense = measure(text_model, x, repeats=5)
    text_model.train()
    prune_magnitude(text_model, 0.9)
    sparse = measure(text_model, (x,), repeats=5)
    assert text_model.training  # measure restores the mode it found
    assert sparse["parameters"] == dense["parameters"]
    assert sparse["nonzero_fraction"] < dense["nonzero_fraction"]
    assert sparse["compressed_bytes"] < dense["compressed_bytes"]
    assert sparse["latency_ms"] > 0 and sparse["threads"] == torch.get_num_threads()
    with pytest.raises(PruneError):
        measure(text_model, x, repeats=0)
    print(f"measure dense {dense} sparse {sparse}")
