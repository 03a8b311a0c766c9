from __future__ import annotations

from datastore.splits import split_of
from deploy.demo.corpora import SENTIMENT_LABELS, sentiment_corpus
from modelpack.text import Vocabulary, tokenize


def test_tokenize_keeps_hashtags_mentions_and_punctuation() -> None:
    assert tokenize("Loving the #SelfDriving car, @Google!") == [
        "loving",
        "the",
        "#selfdriving",
        "car",
        ",",
        "@google",
        "!",
    ]


def test_vocabulary_is_deterministic_and_pads_batches() -> None:
    texts = ["b a a", "c b a", "a"]
    vocab = Vocabulary.build(texts, min_freq=2)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b"]
    batch = vocab.encode_batch(["a b c", "a"], max_len=8)
    assert batch.tolist() == [[2, 3, 1], [2, 0, 0]]
    assert vocab.encode("", max_len=8) == [1]  # never an empty row


def test_split_is_a_stable_function_of_the_key() -> None:
    keys = [f"item-{i}" for i in range(2000)]
    first = [split_of(k) for k in keys]
    assert first == [split_of(k) for k in keys]
    share = {s: first.count(s) / len(keys) for s in ("train", "val", "test")}
    assert 0.75 < share["train"] < 0.85 and 0.07 < share["val"] < 0.13 and 0.07 < share["test"] < 0.13


def test_shipped_corpus_has_the_documented_counts() -> None:
    rows = sentiment_corpus()
    assert len(rows) == 38158
    assert {r.label for r in rows} == set(SENTIMENT_LABELS)
    assert sum(r.label == "negative" for r in rows) == 16186
