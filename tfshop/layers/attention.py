"""Target attention over a behaviour history (DIN, Zhou et al. 2018)."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="tfshop")
class TargetAttention(keras.layers.Layer):
    """Pools history vectors by their relevance to the candidate item.

    Scores come from an MLP on ``[h, c, h - c, h * c]``. As in DIN, the weights are not
    normalised over the history (a sigmoid each), so the pooled vector keeps how much of the
    history matches the candidate, not only its share. Padded positions (``mask`` False) get no
    weight, and an empty history pools to zeros. Inputs: ``[candidate (B, d), history (B, L, d),
    mask (B, L)]``.
    """

    def __init__(self, units: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="relu", name="hidden")
        self.score = keras.layers.Dense(1, name="score")

    def call(self, inputs):
        candidate, history, mask = inputs
        target = tf.broadcast_to(candidate[:, None, :], tf.shape(history))
        features = tf.concat([history, target, history - target, history * target], axis=-1)
        logits = tf.squeeze(self.score(self.hidden(features)), -1)
        weights = tf.sigmoid(logits) * tf.cast(mask, logits.dtype)
        return tf.einsum("bl,bld->bd", weights, history)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
