"""Raw feature values to vectors, inside the graph."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="tfshop")
class NumericEmbedding(keras.layers.Layer):
    """A number as ``[standardised value, embedding of its quantile bucket]``.

    NaN (or a missing value) becomes 0 after standardisation and gets a bucket of its own, and
    other values are clipped to the range seen in training (``low``, ``high``), so a bad input
    (±inf, an absurd number) never turns the scores into NaN or pushes them beyond what was learnt.
    """

    def __init__(
        self,
        mean: float,
        std: float,
        boundaries: list[float],
        dim: int,
        low: float | None = None,
        high: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.mean, self.std, self.boundaries, self.dim = float(mean), float(std), list(boundaries), dim
        self.low, self.high = low, high
        self.embedding = keras.layers.Embedding(len(self.boundaries) + 2, dim, name="bucket_embedding")

    def call(self, x):
        x = tf.reshape(tf.cast(x, tf.float32), [-1])
        missing = tf.math.is_nan(x)
        if self.low is not None and self.high is not None:
            x = tf.clip_by_value(x, self.low, self.high)
        value = tf.where(missing, 0.0, (x - self.mean) / max(self.std, 1e-6))
        bucket = tf.raw_ops.Bucketize(input=tf.where(missing, 0.0, x), boundaries=self.boundaries) + 1
        bucket = tf.where(missing, 0, bucket)
        return tf.concat([value[:, None], self.embedding(bucket)], axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "mean": self.mean,
            "std": self.std,
            "boundaries": self.boundaries,
            "dim": self.dim,
            "low": self.low,
            "high": self.high,
        }


@keras.utils.register_keras_serializable(package="tfshop")
class MaskedMean(keras.layers.Layer):
    """Mean of the vectors at positions whose id is not 0 (padding); zeros when all are."""

    def call(self, inputs):
        vectors, ids = inputs
        mask = tf.cast(ids > 0, vectors.dtype)[..., None]
        return tf.reduce_sum(vectors * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)


@keras.utils.register_keras_serializable(package="tfshop")
class NotPadding(keras.layers.Layer):
    """``ids > 0`` as a boolean mask."""

    def call(self, ids):
        return ids > 0


@keras.utils.register_keras_serializable(package="tfshop")
class StopGradient(keras.layers.Layer):
    """Passes its input on; no gradient flows back through it."""

    def call(self, x):
        return tf.stop_gradient(x)


@keras.utils.register_keras_serializable(package="tfshop")
class Carry(keras.layers.Layer):
    """Passes its first input on; the others stay in the model without being read (the
    retrieval towers when no head reads them: the export serves them)."""

    def call(self, inputs):
        return inputs[0]
