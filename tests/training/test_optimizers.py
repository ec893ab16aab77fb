"""LazyAdam: an embedding's rows move only when a batch uses them; dense weights get Adam's step."""

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.training.optimizers import LazyAdam


def steps(optimizer, batches):
    embedding = tf.Variable(np.ones((6, 2), np.float32))
    dense = tf.Variable(np.ones((2,), np.float32))
    optimizer.build([embedding, dense])
    for rows in batches:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.gather(embedding, rows) * dense)
        optimizer.apply_gradients(zip(tape.gradient(loss, [embedding, dense]), [embedding, dense]))
    return embedding.numpy(), dense.numpy()


def test_rows_not_in_the_batch_stay_put_and_used_rows_follow_adam():
    batches = [tf.constant([0, 1, 1]), tf.constant([2, 3])]
    lazy, lazy_dense = steps(LazyAdam(0.1), batches)
    adam, adam_dense = steps(keras.optimizers.Adam(0.1), batches)
    first, _ = steps(LazyAdam(0.1), batches[:1])
    np.testing.assert_allclose(lazy[[0, 1]], first[[0, 1]])  # not used by the second batch: unmoved
    assert not np.allclose(adam[[0, 1]], first[[0, 1]])  # Adam's momentum moves them anyway
    np.testing.assert_allclose(lazy[[4, 5]], 1.0)  # never used
    np.testing.assert_allclose(lazy[[2, 3]], adam[[2, 3]], rtol=1e-6)  # first use: Adam's own step
    np.testing.assert_allclose(lazy_dense, adam_dense, rtol=1e-6)
    np.testing.assert_allclose(first[0], 1.0 - 0.1, rtol=1e-4)  # Adam's first step: the learning rate
