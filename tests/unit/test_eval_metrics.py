"""Evaluation metrics and plots on small cases worked by hand (the arithmetic is in the comments). No database."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from seqeval.metrics import f1_score as seqeval_f1

from evaluation.metrics import (
    MetricsInputError,
    calibration,
    classification_metrics,
    metrics_for,
    multilabel_metrics,
    span_metrics,
    top_k_accuracy,
)
from evaluation.plots import confusion_matrix_plot, reliability_diagram
from modelpack.text import spans_to_tags, tokenize_with_offsets

approx = pytest.approx


# -- single-label classification -------------------------------------------------------------------------
def test_three_classes_one_empty():
    # cat: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3.  dog: tp 2, fp 1, fn 0 -> P 2/3, R 1, F1 4/5.
    # eel: no support, never predicted -> 0/0/0 (zero_division=0), and it still counts in the macro average:
    # macro F1 = (2/3 + 4/5 + 0) / 3 = 22/45; macro P = (1 + 2/3 + 0) / 3 = 5/9; macro R = (1/2 + 1 + 0) / 3 = 1/2.
    m = classification_metrics(["cat", "cat", "dog", "dog"], ["cat", "dog", "dog", "dog"], ["cat", "dog", "eel"])
    assert m["n"] == 4
    assert m["accuracy"] == approx(3 / 4)
    assert m["majority_rate"] == approx(1 / 2)
    assert m["per_class"]["cat"] == approx({"precision": 1, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1})
    assert m["per_class"]["dog"] == approx({"precision": 2 / 3, "recall": 1, "f1": 0.8, "support": 2, "predicted": 3})
    assert m["per_class"]["eel"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}
    assert m["macro_f1"] == approx(22 / 45)
    assert m["macro_precision"] == approx(5 / 9)
    assert m["macro_recall"] == approx(1 / 2)
    assert m["confusion_matrix"] == {"labels": ["cat", "dog", "eel"], "matrix": [[1, 1, 0], [0, 2, 0], [0, 0, 0]]}
    assert m["empty_classes"] == ["eel"]


def test_all_wrong_model_scores_zero_and_its_ece_is_its_mean_confidence():
    # Every prediction wrong: accuracy 0, every class F1 0. Each bin's accuracy is 0, so its gap is its mean
    # confidence, and ECE = sum |b|/n * conf(b) = mean confidence = (0.9 + 0.6 + 0.7 + 0.8) / 4 = 0.75.
    m = metrics_for("text_classification", ["a", "b", "a", "b"], ["b", "a", "b", "a"], ["a", "b"],
                    confidences=[0.9, 0.6, 0.7, 0.8])  # fmt: skip
    assert m["task"] == "text_classification"
    assert m["accuracy"] == 0.0
    assert m["macro_f1"] == 0.0
    assert all(row["f1"] == 0.0 for row in m["per_class"].values())
    assert m["calibration"]["ece"] == approx(0.75)
    assert m["calibration"]["mce"] == approx(0.9)  # the 0.9 item is alone in (0.8, 0.9]
    assert m["empty_classes"] == []


def test_perfect_model_ece_is_one_minus_mean_confidence():
    # All right: each bin's gap is 1 - conf(b) >= 0, so ECE = sum |b|/n * (1 - conf(b)) = 1 - mean confidence.
    # Bins of 10: 0.55 in (0.5, 0.6], 0.65 in (0.6, 0.7], 0.95 and 1.0 in (0.9, 1.0].
    # ECE = 1/4 * 0.45 + 1/4 * 0.35 + 2/4 * (1 - 0.975) = 0.1125 + 0.0875 + 0.0125 = 0.2125 = 1 - 0.7875.
    c = calibration([0.55, 0.65, 0.95, 1.0], [True, True, True, True])
    assert c["mean_confidence"] == approx(0.7875)
    assert c["ece"] == approx(0.2125)
    assert c["mce"] == approx(0.45)
    assert [row["count"] for row in c["rows"]] == [0, 0, 0, 0, 0, 1, 1, 0, 0, 2]


def test_calibration_two_bins_by_hand():
    # Bin [0, 0.5]: 0.2 (wrong), 0.4 (right) -> accuracy 1/2, confidence 0.3, gap 0.2, weight 2/5 -> 0.08.
    # Bin (0.5, 1]: 0.6 (right), 0.8 (wrong), 0.9 (right) -> accuracy 2/3, confidence 2.3/3, gap 0.1,
    # weight 3/5 -> 0.06.
    # ECE = 0.08 + 0.06 = 0.14; MCE = 0.2.
    c = calibration([0.2, 0.4, 0.6, 0.8, 0.9], [0, 1, 1, 0, 1], bins=2)
    assert c["ece"] == approx(0.14)
    assert c["mce"] == approx(0.2)
    assert c["accuracy"] == approx(3 / 5)
    low, high = c["rows"]
    assert low == approx({"lower": 0, "upper": 0.5, "count": 2, "accuracy": 0.5, "confidence": 0.3, "gap": 0.2})
    assert high == approx({"lower": 0.5, "upper": 1, "count": 3, "accuracy": 2 / 3, "confidence": 2.3 / 3, "gap": 0.1})


def test_calibration_bin_edges_and_empty_bins():
    # Upper edges are inclusive: 0.5 falls in (0.4, 0.5], 0.3 in (0.2, 0.3]; 0 joins the first bin.
    c = calibration([0.5, 0.3, 0.0], [True, False, False])
    counts = [row["count"] for row in c["rows"]]
    assert counts == [1, 0, 1, 0, 1, 0, 0, 0, 0, 0]
    empty = c["rows"][1]
    assert empty == {"lower": 0.1, "upper": 0.2, "count": 0, "accuracy": None, "confidence": None, "gap": None}


# -- top-k ------------------------------------------------------------------------------------------------
FOUR = np.array(
    [
        [0.10, 0.20, 0.30, 0.40],  # true 2: ranked 3, 2, 1, 0 -> top-1 miss, top-2 hit, top-3 hit
        [0.50, 0.30, 0.15, 0.05],  # true 1: ranked 0, 1, ...  -> top-1 miss, top-2 hit, top-3 hit
        [0.05, 0.15, 0.30, 0.50],  # true 0: ranked last       -> miss for k < 4
        [0.70, 0.20, 0.06, 0.04],  # true 0: ranked first      -> hit for every k
    ]
)


def test_top_k_on_four_classes_when_one_class_never_occurs():
    # Class 3 never occurs in y_true, so scikit-learn needs labels= to know there are four columns.
    # top-1 = 1/4, top-2 = 3/4, top-3 = 3/4, top-4 = 1.
    y = [2, 1, 0, 0]
    assert top_k_accuracy(FOUR, y, 1) == approx(1 / 4)
    assert top_k_accuracy(FOUR, y, 2) == approx(3 / 4)
    assert top_k_accuracy(FOUR, y, 3) == approx(3 / 4)
    assert top_k_accuracy(FOUR, y, 4) == 1.0
    assert top_k_accuracy(FOUR, ["c", "b", "a", "a"], 2, labels=["a", "b", "c", "d"]) == approx(3 / 4)


def test_top_k_with_two_classes_is_the_argmax():
    # scikit-learn treats two columns as binary; we take the argmax: rows pick 1, 0, 1 against 1, 1, 0 -> 1/3.
    two = np.array([[0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    assert top_k_accuracy(two, [1, 1, 0], 1) == approx(1 / 3)
    assert top_k_accuracy(two, [1, 1, 1], 1) == approx(2 / 3)  # one class only in y_true
    assert top_k_accuracy(two, [1, 1, 0], 2) == 1.0
    assert top_k_accuracy(np.array([[2.0, 3.0], [-1.0, -4.0]]), [1, 0], 1) == 1.0  # logits, not probabilities


def test_metrics_for_images_adds_top_k_below_the_class_count_and_calibration_from_probabilities():
    labels = ["a", "b", "c", "d"]
    y_true = ["c", "b", "a", "a"]
    y_pred = [labels[i] for i in FOUR.argmax(axis=1)]  # d, a, d, a
    m = metrics_for("image_classification", y_true, y_pred, labels, probabilities=FOUR)
    assert m["top_k"] == approx({"top_1": 1 / 4, "top_3": 3 / 4})  # no top_5: only 4 classes
    assert m["top_k"]["top_1"] == m["accuracy"]
    # Winning confidences 0.4 (wrong), 0.5 (wrong), 0.5 (wrong), 0.7 (right): bins (0.3, 0.4], (0.4, 0.5] x2,
    # (0.6, 0.7] -> ECE = 1/4 * 0.4 + 2/4 * 0.5 + 1/4 * (1 - 0.7) = 0.1 + 0.25 + 0.075 = 0.425.
    assert m["calibration"]["ece"] == approx(0.425)


# -- spans ------------------------------------------------------------------------------------------------
LABELS = ["PER", "LOC", "ORG", "MISC"]  # MISC: an empty label
TEXTS = [
    "Ann lives in New York.",  # Ann 0-3, lives 4-9, in 10-12, New 13-16, York 17-21, "." 21-22
    "Bob met Carl in Paris.",  # Bob 0-3, met 4-7, Carl 8-12, in 13-15, Paris 16-21, "." 21-22
    "Nothing here",  # Nothing 0-7, here 8-12
    "",  # an empty item: no tokens, no spans
]
TRUE = [
    [{"start": 0, "end": 3, "label": "PER"}, {"start": 13, "end": 21, "label": "LOC"}],
    [
        {"start": 0, "end": 3, "label": "PER"},
        {"start": 8, "end": 12, "label": "PER"},
        {"start": 16, "end": 21, "label": "LOC"},
    ],
    [],
    [],
]
PRED = [
    # "New Yor": one character short, but it still touches the tokens New and York.
    [{"start": 0, "end": 3, "label": "PER"}, {"start": 13, "end": 20, "label": "LOC"}],
    # "Paris.": one character long, and that character is the token "."; Carl is missing.
    [{"start": 0, "end": 3, "label": "PER"}, {"start": 16, "end": 22, "label": "LOC"}],
    [{"start": 0, "end": 7, "label": "ORG"}],  # spurious
    [],
]


def test_span_metrics_strict_and_token_level():
    m = span_metrics(TRUE, PRED, LABELS, TEXTS)
    assert m["n"] == 4
    # Strict (characters): gold 5 (PER 3, LOC 2), predicted 5 (PER 2, LOC 2, ORG 1), hits 2 (Ann, Bob).
    # micro P = R = F1 = 2/5. PER: P 2/2, R 2/3, F1 4/5; LOC, ORG, MISC 0.
    # macro F1 = 4/5 / 4 = 1/5; macro P = 1/4; macro R = 2/3 / 4 = 1/6.
    strict = m["strict"]
    assert (strict["support"], strict["predicted"]) == (5, 5)
    assert strict["micro_f1"] == approx(2 / 5)
    assert strict["per_label"]["PER"] == approx(
        {"precision": 1, "recall": 2 / 3, "f1": 0.8, "support": 3, "predicted": 2}
    )
    assert strict["per_label"]["LOC"]["f1"] == 0.0
    assert strict["per_label"]["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 1}
    assert strict["macro_f1"] == approx(1 / 5)
    assert strict["macro_precision"] == approx(1 / 4)
    assert strict["macro_recall"] == approx(1 / 6)
    assert strict["empty_labels"] == ["MISC"]
    # Token level: "New Yor" becomes B-LOC I-LOC like "New York", so it matches; "Paris." tags the "." too
    # and does not. Hits 3 of 5 both ways: micro 3/5. LOC: P 1/2, R 1/2, F1 1/2.
    # macro F1 = (4/5 + 1/2 + 0 + 0) / 4 = 0.325.
    token = m["token"]
    assert token["micro_precision"] == approx(3 / 5)
    assert token["micro_recall"] == approx(3 / 5)
    assert token["micro_f1"] == approx(3 / 5)
    assert token["per_label"]["LOC"] == approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "predicted": 2}
    )
    assert token["macro_f1"] == approx(0.325)


def test_token_level_agrees_with_seqeval_on_the_tags():
    tags = {
        side: [spans_to_tags(tokenize_with_offsets(text), spans) for text, spans in zip(TEXTS, items, strict=True)]
        for side, items in (("true", TRUE), ("pred", PRED))
    }
    assert span_metrics(TRUE, PRED, LABELS, TEXTS)["token"]["micro_f1"] == approx(
        seqeval_f1(tags["true"], tags["pred"])
    )


def test_span_covering_no_token_counts_only_in_strict():
    # [1, 3) is the two spaces in "a  b": a character span, but no token carries it.
    m = span_metrics([[{"start": 1, "end": 3, "label": "PER"}]], [[]], ["PER"], ["a  b"])
    assert m["strict"]["support"] == 1
    assert m["token"]["support"] == 0


def test_metrics_for_spans():
    m = metrics_for("spans", TRUE, PRED, LABELS, texts=TEXTS)
    assert m["task"] == "spans"
    assert m["strict"]["micro_f1"] == approx(2 / 5)


# -- multi-label ------------------------------------------------------------------------------------------
def test_multilabel_by_hand():
    # Columns news, sport, tech, art (art: empty label).
    # true:  [1,1,0,0] [0,0,1,0] [0,0,0,0] [1,0,0,0]
    # pred:  [1,0,0,0] [0,1,1,0] [0,0,0,0] [0,0,0,0]
    # news: tp 1, fn 1 -> P 1, R 1/2, F1 2/3. sport: fp 1, fn 1 -> 0. tech: tp 1 -> 1. art: 0.
    # micro: tp 2, fp 1, fn 2 -> P 2/3, R 1/2, F1 4/7. macro F1 (2/3 + 0 + 1 + 0) / 4 = 5/12.
    # samples: 2/3, 2/3, 1 (nothing true, nothing predicted: right), 0 -> 7/12.
    # subset accuracy: only the empty item -> 1/4. Hamming: 3 wrong cells of 16 -> 3/16.
    labels = ["news", "sport", "tech", "art"]
    m = multilabel_metrics([["news", "sport"], ["tech"], [], ["news"]], [["news"], ["tech", "sport"], [], []], labels)
    assert m["n"] == 4
    assert m["micro_precision"] == approx(2 / 3)
    assert m["micro_recall"] == approx(1 / 2)
    assert m["micro_f1"] == approx(4 / 7)
    assert m["macro_f1"] == approx(5 / 12)
    assert m["macro_precision"] == approx(1 / 2)
    assert m["macro_recall"] == approx(3 / 8)
    assert m["samples_f1"] == approx(7 / 12)
    assert m["subset_accuracy"] == approx(1 / 4)
    assert m["hamming_loss"] == approx(3 / 16)
    assert m["per_label"]["news"] == approx({"precision": 1, "recall": 0.5, "f1": 2 / 3, "support": 2, "predicted": 1})
    assert m["per_label"]["art"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}
    assert m["empty_labels"] == ["art"]
    assert metrics_for("multi_label", [["news"]], [["news"]], labels)["micro_f1"] == 1.0


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classification_metrics(["a"], ["a", "b"], ["a", "b"]), "y_true and y_pred: differ in length: 1, 2"),
        (lambda: classification_metrics([], [], ["a"]), "are empty"),
        (
            lambda: classification_metrics(["a"], ["zebra"], ["a", "b"]),
            "y_pred: has labels not in the label list: zebra",
        ),
        (lambda: classification_metrics(["x"], ["a"], ["a"]), "y_true: has labels not in the label list: x"),
        (lambda: classification_metrics([["a"]], ["a"], ["a"]), r"y_true\[0\]: is a list, not a label"),  # type: ignore[list-item]  # deliberately invalid input
        (lambda: classification_metrics(["a"], ["a"], ["a", "a"]), "labels: repeats a"),
        (lambda: classification_metrics(["a"], ["a"], []), "labels: must be a non-empty list"),
        (lambda: calibration([0.5, float("nan")], [True, False]), "confidences: has 1 NaN .* index 1"),
        (lambda: calibration([0.5, 1.5], [True, False]), r"must lie in \[0, 1\]"),
        (lambda: calibration([], []), "confidences: is empty"),
        (lambda: calibration([0.5], [True, False]), "correct: has 2 values for 1 confidences"),
        (lambda: calibration([0.5], ["yes"]), "correct: must be a list of booleans"),  # type: ignore[list-item]  # deliberately invalid input
        (lambda: calibration([0.5], [True], bins=0), "bins: must be a positive integer"),
        (lambda: calibration(["high"], [True]), "confidences: must be a list of numbers"),  # type: ignore[list-item]  # deliberately invalid input
        (lambda: top_k_accuracy(np.ones(4), [0], 1), r"must be a non-empty \(N, C\) array, not of shape \(4,\)"),
        (lambda: top_k_accuracy(FOUR, [0, 1], 1), "y_true: has 2 items for 4 rows"),
        (lambda: top_k_accuracy(FOUR, [0, 1, 2, 4], 1), r"y_true\[3\]: 4 is neither a label nor a column index"),
        (lambda: top_k_accuracy(FOUR, [0, 1, 2, 3], 0), "k: must be an integer from 1 to the number of classes"),
        (lambda: top_k_accuracy(FOUR, [0, 1, 2, 3], 5), r"k: .*\(4\), not 5"),
        (lambda: top_k_accuracy(FOUR, ["a"] * 4, 1, labels=["a", "b"]), "probabilities: has 4 columns for 2 labels"),
        (lambda: top_k_accuracy(FOUR, ["a"] * 4, 1), r"'a' is not a label \(give labels=\)"),
        (lambda: top_k_accuracy([[0.1, np.nan]], [0], 1), r"probabilities: .* index \(0, 1\)"),
        (lambda: multilabel_metrics(["news"], [["news"]], ["news"]), r"y_true\[0\]: must be a list of labels, not str"),  # type: ignore[list-item]  # deliberately invalid input
        (
            lambda: multilabel_metrics([["news"]], [["nope"]], ["news"]),
            r"y_pred\[0\]: has labels not in the label list",
        ),
        (
            lambda: span_metrics([[]], [[]], ["PER"], ["a", "b"]),
            "true_spans and pred_spans and texts: differ in length",
        ),
        (
            lambda: span_metrics([[{"start": 2, "end": 2, "label": "PER"}]], [[]], ["PER"], ["abc"]),
            "0 <= start < end <= 3",
        ),
        (
            lambda: span_metrics([[]], [[{"start": 0, "end": 9, "label": "PER"}]], ["PER"], ["abc"]),
            r"pred_spans\[0\]\[0\]",
        ),
        (
            lambda: span_metrics([[]], [[{"start": 0, "end": 1, "label": "X"}]], ["PER"], ["abc"]),
            "'X' is not in the label",
        ),
        (lambda: span_metrics([[{"start": 0, "label": "PER"}]], [[]], ["PER"], ["abc"]), "start, end and label"),
        (lambda: span_metrics([[]], [[]], ["PER"], [None]), r"texts\[0\]: must be a string"),  # type: ignore[list-item]  # deliberately invalid input
        (lambda: metrics_for("regression", [1], [1], ["a"]), "unknown task type 'regression'"),
        (lambda: metrics_for("spans", [[]], [[]], ["PER"]), "texts: span metrics need each item's text"),
        (lambda: metrics_for("multi_label", [["a"]], [["a"]], ["a"], confidences=[0.5]), "only single-label tasks"),
        (
            lambda: metrics_for("image_classification", ["a"], ["a"], ["a", "b"], probabilities=[[0.5, 0.5]] * 2),
            "probabilities: has 2 rows for 1 items",
        ),
        (lambda: reliability_diagram(calibration([0.5], [True]), "jpeg"), "unknown plot format 'jpeg'"),
        (lambda: reliability_diagram({"rows": []}, "png"), "calibration: must be a dict from"),
        (lambda: confusion_matrix_plot({"labels": ["a"], "matrix": [[1, 2]]}, "svg"), r"square matrix .* \(1, 2\)"),
        (lambda: confusion_matrix_plot({"labels": ["a"], "matrix": [[1]]}, "out.pdf"), "unknown plot format 'out.pdf'"),
    ],
)
def test_bad_input_says_what_is_wrong(call, message):
    with pytest.raises(MetricsInputError, match=message):
        call()
    assert issubclass(MetricsInputError, ValueError)


# -- plots ------------------------------------------------------------------------------------------------
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag.rsplit("}", 1)[-1] == "svg"
    return root


def test_reliability_diagram_png_and_svg(tmp_path):
    c = calibration([0.2, 0.4, 0.6, 0.8, 0.9], [0, 1, 1, 0, 1])
    assert reliability_diagram(c, "png").startswith(PNG_SIGNATURE)
    svg = reliability_diagram(c, "SVG")
    _svg_root(svg)
    assert reliability_diagram(c, "svg") == svg  # repeatable bytes: no dates, fixed ids
    written = reliability_diagram(c, tmp_path / "plots" / "reliability.svg")
    assert (tmp_path / "plots" / "reliability.svg").read_bytes() == written


def test_confusion_matrix_plot(tmp_path):
    m = classification_metrics(["cat", "cat", "dog", "dog"], ["cat", "dog", "dog", "dog"], ["cat", "dog", "eel"])
    png = confusion_matrix_plot(m["confusion_matrix"], tmp_path / "cm.png")
    assert png.startswith(PNG_SIGNATURE)
    assert (tmp_path / "cm.png").read_bytes() == png
    svg = confusion_matrix_plot(m["confusion_matrix"], "svg", normalize=True)
    _svg_root(svg)
    assert b"dog" in svg  # matplotlib draws text as paths, each with its string in a comment


# -- compatibility ----------------------------------------------------------------------------------------
def test_classification_metrics_keeps_the_keys_its_callers_read():
    m = classification_metrics(["a", "b"], ["a", "a"], ["a", "b"])
    assert {"n", "accuracy", "macro_f1", "majority_rate", "per_class", "confusion_matrix"} <= m.keys()
    assert {"precision", "recall", "f1", "support"} <= m["per_class"]["a"].keys()
    assert m["confusion_matrix"] == {"labels": ["a", "b"], "matrix": [[1, 0], [1, 0]]}
