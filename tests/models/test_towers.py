"""The retrieval towers' pieces: in-batch logits, their loss, the history state."""

import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras

from tfshop.data.catalogue import read_catalogue
from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema
from tfshop.errors import ConfigError, DataError
from tfshop.layers.retrieval import CatalogueSample, InBatchScores, InBatchSoftmax
from tfshop.layers.sequence import CausalSequenceEncoder, HistoryState
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import build_model, with_retrieval_scores
from tfshop.models.towers import tower_inputs, tower_models
from tfshop.training.targets import Targets


def test_in_batch_logits_are_corrected_by_impression_share_and_mask_accidental_hits():
    """Rows show items [a, a, b] with a shown three times as often as b; unknown items get the
    rarest share. Row 0's softmax must not count row 1 (the same item a) as a negative."""
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    items = np.array([[0.8, 0.6], [0.8, 0.6], [0.0, 1.0]], np.float32)
    layer = InBatchScores({"a": 30, "b": 10, "c": 0}, temperature=0.5)
    logits = layer([tf.constant(queries), tf.constant(items), tf.constant(["a", "a", "b"])]).numpy()
    expected = queries @ items.T / 0.5 - np.log([0.75, 0.75, 0.25])
    for row, column in [(0, 1), (1, 0)]:
        expected[row, column] = logits[row, column]  # masked: checked below
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    assert logits[0, 1] < -1e8 and logits[1, 0] < -1e8 and logits[2, 0] > -1e8
    loss = InBatchSoftmax(reduction="none")(tf.zeros(3), tf.constant(logits)).numpy()
    kept = np.where(logits < -1e8, -np.inf, logits)
    by_hand = [np.log(np.exp(kept[r]).sum()) - kept[r, r] for r in range(3)]
    np.testing.assert_allclose(loss, by_hand, rtol=1e-5)
    unseen = layer([tf.constant(queries[:1]), tf.constant(items[:1]), tf.constant(["zzz"])]).numpy()
    assert unseen[0, 0] == pytest.approx(queries[0] @ items[0] / 0.5 - np.log(0.25), rel=1e-5)


def test_extra_uniform_candidates_are_corrected_by_the_mixture_and_masked():
    """Rows [a, a, b] plus uniform draws [b, c] from a catalogue of 4: each candidate's
    probability is its impression share + 2 / (3 · 4); row 2's draw of b is an accidental hit."""
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    items = np.array([[0.8, 0.6], [0.8, 0.6], [0.0, 1.0]], np.float32)
    extra = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    layer = InBatchScores({"a": 30, "b": 10}, temperature=0.5, catalogue_size=4)
    inputs = [tf.constant(queries), tf.constant(items), tf.constant(["a", "a", "b"])]
    logits = layer(inputs + [tf.constant(extra), tf.constant(["b", "c"])]).numpy()
    share = np.array([0.75, 0.75, 0.25, 0.25, 0.25])  # c never shown: the rarest share
    expected = queries @ np.concatenate([items, extra]).T / 0.5 - np.log(share + 2 / 12)
    masked = [(0, 1), (1, 0), (2, 3)]
    for row, column in masked:
        assert logits[row, column] < -1e8
        expected[row, column] = logits[row, column]
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="need the catalogue_size"):
        InBatchScores({"a": 1})(inputs + [tf.constant(extra), tf.constant(["b", "c"])])


def test_catalogue_sample_draws_whole_rows_and_survives_its_config():
    columns = {
        "item_id": np.array(["a", "b", "c"], dtype=object),
        "price": np.array([1.0, 2.0, 3.0], np.float32),
        "attributes": np.array([["x", ""], ["y", "z"], ["", ""]], dtype=object),
    }
    tf.random.set_seed(0)
    for layer in (
        CatalogueSample(columns, 50),
        CatalogueSample.from_config(CatalogueSample(columns, 50).get_config()),
    ):
        drawn = layer(tf.constant(["anything"]))
        ids = [i.decode() for i in drawn["item_id"].numpy()]
        assert drawn["price"].dtype == tf.float32 and drawn["attributes"].shape == (50, 2)
        assert set(ids) == {"a", "b", "c"}
        rows = ["abc".index(i) for i in ids]
        np.testing.assert_array_equal(drawn["price"].numpy(), columns["price"][rows])
        assert drawn["attributes"].numpy().astype(str).tolist() == columns["attributes"][rows].tolist()


def test_joint_model_scores_its_batch_against_extra_catalogue_items(small_dataset, tiny_bert, tmp_path):
    """Half the catalogue never shown in training: the frozen encoder's cache must cover its
    titles too, since the extra negatives run them through the item tower in a training step."""
    data = tmp_path / "dataset"
    shutil.copytree(small_dataset, data)
    items = read_catalogue(data)
    unseen = items.assign(
        item_id="new-" + items["item_id"], title="new " + items["title"], train_impressions=0
    )
    pd.concat([items, unseen]).to_parquet(data / "items.parquet", index=False)
    schema = Schema.load(data)
    config = ModelConfig.of(block="shared_bottom", text_encoder=str(tiny_bert), retrieval_extra_negatives=64)
    model = build_model(data, config, schema)
    targets = Targets(data, schema, config)
    trained = with_retrieval_scores(model, data, schema, targets.tasks, config)
    trained.compile(optimizer="adam", **targets.compile_args())
    batches = make_dataset(data, "train", InputConfig(batch_size=32), schema).map(targets)
    features, _, _ = next(iter(batches))
    assert trained(features)["retrieval"].shape == (32, 32 + 64)
    losses = trained.fit(batches.take(3), epochs=1, verbose=0).history["retrieval_loss"]
    assert np.isfinite(losses).all()


def test_in_batch_scores_need_impressions():
    with pytest.raises(ValueError, match="no training impressions"):
        InBatchScores({"a": 0})


def test_history_state_reads_right_padded_histories_like_left_padded_ones():
    """[x1, x2, pad, pad] must give the encoder's state after x2 on [pad, pad, x1, x2]; an empty
    history gives zeros."""
    tf.random.set_seed(0)
    vectors = tf.random.normal((3, 4, 8))
    ids = tf.constant([[5, 7, 0, 0], [3, 4, 2, 9], [0, 0, 0, 0]])
    state = HistoryState(4, num_blocks=1, dropout=0.0)
    out = state([vectors, ids]).numpy()
    encoder: CausalSequenceEncoder = state.encoder
    left = tf.concat([tf.zeros((1, 2, 8)), vectors[:1, :2]], axis=1)
    mask = tf.constant([[False, False, True, True]])
    np.testing.assert_allclose(out[0], encoder([left, mask]).numpy()[0, -1], atol=1e-5)
    np.testing.assert_allclose(out[1], encoder([vectors[1:2], ids[1:2] > 0]).numpy()[0, -1], atol=1e-5)
    np.testing.assert_array_equal(out[2], np.zeros(8))


def test_towers_name_what_they_miss(small_dataset, tmp_path):
    with pytest.raises(ConfigError, match=r"need the item id \(item_id\) as a model input"):
        build_model(small_dataset, ModelConfig(exclude_features=["item_id"]))
    with pytest.raises(DataError, match="needs the item catalogue"):
        tower_inputs(["item_id", "user_id"], tmp_path, ModelConfig())


def test_without_popularity_correction_the_logits_are_the_plain_dot_products():
    queries = np.array([[1.0, 2.0], [0.5, -1.0]], np.float32)
    items = np.array([[0.3, 0.1], [2.0, 1.0]], np.float32)
    layer = InBatchScores({"a": 30, "b": 10}, temperature=1.0, popularity_correction=False)
    logits = layer([tf.constant(queries), tf.constant(items), tf.constant(["a", "b"])]).numpy()
    np.testing.assert_allclose(logits, queries @ items.T, rtol=1e-6)


PLAIN_TOWERS = {
    "trains_embeddings": True,
    "projection": False,
    "normalize": False,
    "popularity_correction": False,
    "match_feature": False,
}


def _retrieval_gradient(model, config, dataset, schema, table: str):
    """The retrieval loss's gradient with respect to the embedding table ``table`` on one batch."""
    targets = Targets(dataset, schema, config)
    trained = with_retrieval_scores(model, dataset, schema, targets.tasks, config)
    batches = make_dataset(dataset, "train", InputConfig(batch_size=512, deterministic=True), schema)
    features, y, w = next(iter(batches.map(targets)))
    assert w["retrieval"].numpy().sum() > 0  # some clicked rows
    with tf.GradientTape() as tape:
        loss = InBatchSoftmax()(y["retrieval"], trained(features)["retrieval"], w["retrieval"])
    return tape.gradient(loss, model.get_layer(table).embeddings)


def test_an_ids_only_two_tower_model_trains_its_embeddings_and_keeps_its_towers(small_dataset, tmp_path):
    """TFRS's two-tower shape: the towers are the user and item embeddings themselves, trained by
    the retrieval loss, with no dot product among the ranking features — yet still saved."""
    schema = Schema.load(small_dataset)
    ids_only = dict(tasks=["ctr", "retrieval"], features=["user_id", "item_id"], tower_units=[], dropout=0.0)
    default = ModelConfig.of(**ids_only)
    assert (
        _retrieval_gradient(
            build_model(small_dataset, default), default, small_dataset, schema, "user_id_embedding"
        )
        is None
    )
    config = ModelConfig.of(**ids_only, retrieval=PLAIN_TOWERS)
    model = build_model(small_dataset, config, schema)
    assert sorted(model.input_names) == ["item_id", "user_id"]
    assert "query_item_match" not in [layer.name for layer in model.layers]
    gradient = _retrieval_gradient(model, config, small_dataset, schema, "user_id_embedding")
    assert gradient is not None and np.abs(tf.convert_to_tensor(gradient).numpy()).sum() > 0
    users = tf.constant(["u1", "u2", "someone new"])
    embedded = model.get_layer("user_id_embedding")(model.get_layer("user_id_hash")(users)).numpy()
    model.save(str(tmp_path / "model"), save_format="tf", save_traces=False)
    for m in (model, tf_keras.models.load_model(str(tmp_path / "model"))):
        query_tower = tower_models(m, ["user_id"], ["item_id"])[0]
        np.testing.assert_allclose(query_tower({"user_id": users}).numpy(), embedded, rtol=1e-6)


def test_towers_without_a_projection_must_end_at_one_width(small_dataset):
    with pytest.raises(ConfigError, match="without retrieval.projection both sides need the same width"):
        build_model(
            small_dataset,
            ModelConfig.of(tower_units=[], features=["user_id", "item_id", "price"], retrieval=PLAIN_TOWERS),
        )
    with pytest.raises(ConfigError, match="model.features: no feature 'colour'"):
        build_model(small_dataset, ModelConfig.of(features=["item_id", "colour"]))
