import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from tfshop.layers.attention import TargetAttention
from tfshop.layers.experts import MultiGateMixtureOfExperts, ProgressiveLayeredExtraction, SharedBottom
from tfshop.layers.features import MaskedMean, NumericEmbedding
from tfshop.layers.text import HashedBagOfWords


def test_target_attention_ignores_padding_and_empty_histories():
    layer = TargetAttention(8)
    candidate = tf.random.normal([3, 4])
    history = tf.random.normal([3, 5, 4])
    mask = tf.constant([[True, True, False, False, False], [False] * 5, [True] * 5])
    pooled = layer([candidate, history, mask]).numpy()
    changed = tf.tensor_scatter_nd_update(history, [[0, 3]], [tf.fill([4], 100.0)])
    assert np.allclose(layer([candidate, changed, mask]).numpy()[0], pooled[0])  # padded slot: no weight
    assert np.allclose(pooled[1], 0.0)
    # Unnormalised (DIN): a lone item pools to a fraction of itself, the same item twice to twice that.
    lone = tf.constant([[True, False, False, False, False]])
    lone_pooled = layer([candidate[:1], history[:1], lone]).numpy()[0]
    ratio = lone_pooled / history[0, 0].numpy()
    assert np.allclose(ratio, ratio[0], atol=1e-5) and 0 < ratio[0] < 1
    doubled = tf.tensor_scatter_nd_update(history[:1], [[0, 1]], history[:1, 0])
    pair = tf.constant([[True, True, False, False, False]])
    assert np.allclose(layer([candidate[:1], doubled, pair]).numpy()[0], 2 * lone_pooled, atol=1e-5)


@pytest.mark.parametrize(
    "block",
    [
        SharedBottom(3, [8]),
        MultiGateMixtureOfExperts(3, 4, [8, 6]),
        ProgressiveLayeredExtraction(3, 2, 2, 1, [8]),
    ],
)
def test_blocks_give_one_vector_per_task_and_round_trip(block):
    x = tf.random.normal([5, 7])
    outputs = block(x)
    assert len(outputs) == 3 and all(o.shape == (5, block.units[-1]) for o in outputs)
    clone = type(block).from_config(block.get_config())
    assert [o.shape for o in clone(x)] == [o.shape for o in outputs]


def test_mmoe_gates_are_per_task():
    block = MultiGateMixtureOfExperts(2, 3, [4])
    x = tf.random.normal([6, 5])
    a, b = block(x)
    assert not np.allclose(a.numpy(), b.numpy())


def test_numeric_embedding_survives_nan_and_buckets():
    layer = NumericEmbedding(mean=10.0, std=2.0, boundaries=[5.0, 15.0], dim=3)
    out = layer(tf.constant([float("nan"), 12.0, 20.0])).numpy()
    assert np.isfinite(out).all()
    assert out[0, 0] == 0.0 and out[1, 0] == pytest.approx(1.0) and out[2, 0] == pytest.approx(5.0)
    table = layer.embedding.embeddings.numpy()
    assert (
        np.allclose(out[0, 1:], table[0])
        and np.allclose(out[1, 1:], table[2])
        and np.allclose(out[2, 1:], table[3])
    )


def test_numeric_embedding_clips_to_the_training_range():
    layer = NumericEmbedding(mean=10.0, std=2.0, boundaries=[5.0, 15.0], dim=3, low=0.0, high=20.0)
    out = layer(tf.constant([float("inf"), -float("inf"), 1e30, 20.0, float("nan")])).numpy()
    assert np.isfinite(out).all()
    assert out[:, 0].tolist() == [5.0, -5.0, 5.0, 5.0, 0.0]
    assert np.allclose(out[0], out[3]) and np.allclose(out[2], out[3])


def test_hashed_bag_of_words():
    layer = HashedBagOfWords(num_bins=1000, dim=4)
    out = layer(tf.constant(["Red Shoes", "red shoes", "", "blue hat"])).numpy()
    assert np.allclose(out[0], out[1])  # lower-cased
    assert np.allclose(out[2], 0.0)  # empty text
    assert not np.allclose(out[0], out[3])


def test_masked_mean():
    vectors = tf.constant([[[1.0], [3.0], [100.0]], [[5.0], [6.0], [7.0]]])
    ids = tf.constant([[4, 2, 0], [0, 0, 0]])
    assert MaskedMean()([vectors, ids]).numpy().tolist() == [[2.0], [0.0]]


def test_layers_are_registered_for_loading():
    for layer in (TargetAttention, SharedBottom, NumericEmbedding, HashedBagOfWords):
        assert keras.saving.get_registered_object(f"tfshop>{layer.__name__}") is layer
