"""The next-item export: recommend with seen items left out, popularity for an empty history,
unknown ids ignored, k clipped, and serving_default scoring given candidates."""

import numpy as np
import pytest
import tensorflow as tf

from tfshop.export.next_item import EXCLUDED, export_next_item
from tfshop.models.sequential import NextItemModel, fit_next_item, item_counts, score_next
from tfshop.models.sequential_config import SequentialConfig

ITEMS = 40
NAMES = [f"item{i}" for i in range(1, ITEMS + 1)]


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    sequences = []
    for _ in range(400):
        start, step = rng.integers(0, ITEMS), rng.integers(1, 3)
        sequences.append([int((start + step * k) % ITEMS) + 1 for k in range(rng.integers(4, 10))])
    config = SequentialConfig(max_length=6, dim=16, epochs=3, loss="full", dropout=0.0)
    model = NextItemModel(ITEMS, config, item_counts(sequences, ITEMS))
    fit_next_item(model, sequences)
    return model


def strings(rows):
    width = max(map(len, rows))
    return tf.constant([row + [""] * (width - len(row)) for row in rows])


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved")
    warmup = {"history": np.array([[b"item1", b"item2"]]), "k": np.array([3], np.int32)}
    warmup["items"] = np.array([[b"item3", b"item4"]])
    path = export_next_item(trained, NAMES, base, "next", warmup, k=5)
    return path, tf.saved_model.load(str(path))


def test_recommend_leaves_the_history_out_and_matches_the_model(trained, exported):
    path, loaded = exported
    assert set(loaded.signatures) == {"serving_default", "recommend", "recommend_k"}
    assert (path / "assets.extra" / "tf_serving_warmup_requests").is_file()
    histories = [["item3", "item5", "item7"], ["item10"], ["item2", "item2", "item40", "item1"]]
    answer = loaded.signatures["recommend"](history=strings(histories))
    ids = answer["item_ids"].numpy().astype(str)
    assert ids.shape == (3, 5)
    for row, history in zip(ids, histories):
        assert not set(row) & set(history)
    expected = score_next(trained, [[NAMES.index(i) + 1 for i in h] for h in histories])
    for row, history in enumerate(histories):
        expected[row, [NAMES.index(i) for i in history]] = -np.inf
        top = np.argsort(-expected[row])[:5]
        np.testing.assert_allclose(answer["scores"].numpy()[row], expected[row, top], rtol=1e-4, atol=1e-5)
        assert ids[row].tolist() == [NAMES[i] for i in top]


def test_empty_or_unknown_histories_and_large_k(trained, exported):
    _, loaded = exported
    recommend_k = loaded.signatures["recommend_k"]
    empty = recommend_k(history=tf.constant([[""], ["nope"]]), k=tf.constant([3, 2]))
    popular = [NAMES[i] for i in np.argsort(-trained.popularity, kind="stable")[:3]]
    assert empty["item_ids"].shape == (2, 3)  # the batch gets the largest k asked
    for row in empty["item_ids"].numpy().astype(str):
        assert set(row) == set(popular)
    known = recommend_k(history=strings([["item4", "item9"]]), k=tf.constant([5]))
    with_unknown = recommend_k(history=strings([["x", "item4", "", "item9", "y"]]), k=tf.constant([5]))
    np.testing.assert_array_equal(known["item_ids"].numpy(), with_unknown["item_ids"].numpy())
    everything = recommend_k(history=strings([["item1", "item2"]]), k=tf.constant([1000]))
    scores = everything["scores"].numpy()[0]
    assert everything["item_ids"].shape == (1, ITEMS)  # clipped to the catalogue
    assert (scores[-2:] == EXCLUDED).all() and (scores[:-2] > EXCLUDED).all()


def test_serving_default_scores_candidates(exported):
    _, loaded = exported
    history = strings([["item3", "item5"]])
    top = loaded.signatures["recommend"](history=history)
    picked = top["item_ids"][:, :3]
    scored = loaded.signatures["serving_default"](history=history, items=picked)["scores"].numpy()
    np.testing.assert_allclose(scored, top["scores"].numpy()[:, :3], rtol=1e-5)
    seen_and_unknown = loaded.signatures["serving_default"](
        history=history, items=tf.constant([["item3", "zzz"]])
    )
    assert (seen_and_unknown["scores"].numpy() == EXCLUDED).all()


def test_allow_repeats_keeps_history_items(trained, tmp_path):
    warmup = {
        "history": np.array([[b"item1"]]),
        "k": np.array([2], np.int32),
        "items": np.array([[b"item2"]]),
    }
    path = export_next_item(trained, NAMES, tmp_path, "next", warmup, k=ITEMS, allow_repeats=True)
    answer = tf.saved_model.load(str(path)).signatures["recommend"](history=strings([["item1", "item2"]]))
    assert {"item1", "item2"} <= set(answer["item_ids"].numpy().astype(str)[0])
    assert (answer["scores"].numpy() > EXCLUDED).all()
