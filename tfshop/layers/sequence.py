"""A causal transformer over a behaviour sequence (SASRec, Kang & McAuley 2018)."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="tfshop")
class CausalSequenceEncoder(keras.layers.Layer):
    """Contextualises a left-padded sequence of event vectors, each position seeing only itself
    and the positions before it.

    Inputs: ``[vectors (B, L, d), mask (B, L)]`` with the most recent event last and padding
    (``mask`` False) on the left; only the last ``max_length`` positions are kept. A learnt
    position embedding (counted from the most recent event, so the newest position always has
    the same one) is added; then ``num_blocks`` pre-norm blocks of causal multi-head
    self-attention and a ReLU feed-forward layer, each with a residual connection and dropout;
    a final layer norm. Returns ``(B, min(L, max_length), d)``; the last position is the state
    after the whole sequence. Padded positions output zeros. ``causal=False`` lets every
    position see the whole sequence (pre-training's masked prediction).
    """

    def __init__(
        self,
        max_length: int,
        num_blocks: int = 2,
        num_heads: int = 1,
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.max_length, self.num_blocks, self.num_heads, self.dropout = (
            max_length,
            num_blocks,
            num_heads,
            dropout,
        )

    def build(self, input_shape):
        dim = int(input_shape[0][-1])
        if dim % self.num_heads:
            raise ValueError(f"CausalSequenceEncoder: width {dim} is not divisible by {self.num_heads} heads")
        self.positions = self.add_weight(
            name="positions",
            shape=(self.max_length, dim),
            initializer=keras.initializers.RandomNormal(0, 0.02),
        )
        self.input_dropout = keras.layers.Dropout(self.dropout)
        self.blocks = []
        for i in range(self.num_blocks):
            self.blocks.append(
                {
                    "attention_norm": keras.layers.LayerNormalization(
                        epsilon=1e-6, name=f"attention_norm_{i}"
                    ),
                    "attention": keras.layers.MultiHeadAttention(
                        self.num_heads, dim // self.num_heads, dropout=self.dropout, name=f"attention_{i}"
                    ),
                    "ffn_norm": keras.layers.LayerNormalization(epsilon=1e-6, name=f"ffn_norm_{i}"),
                    "ffn_hidden": keras.layers.Dense(dim, activation="relu", name=f"ffn_hidden_{i}"),
                    "ffn_output": keras.layers.Dense(dim, name=f"ffn_output_{i}"),
                    "dropout": keras.layers.Dropout(self.dropout),
                }
            )
        self.output_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="output_norm")
        super().build(input_shape)

    def call(self, inputs, training=None, causal=True):
        vectors, mask = inputs[0][:, -self.max_length :], inputs[1][:, -self.max_length :]
        length = tf.shape(vectors)[1]
        positions = self.positions[self.max_length - length :]
        keep = tf.cast(mask, vectors.dtype)[..., None]
        x = self.input_dropout(vectors + positions[None], training=training) * keep
        attention_mask = mask[:, None, :]
        if causal:
            attention_mask &= tf.linalg.band_part(tf.ones((length, length), tf.bool), -1, 0)[None]
        attention_mask |= tf.eye(length, dtype=tf.bool)[None]  # a padded query attends to itself
        for block in self.blocks:
            normed = block["attention_norm"](x)
            x = x + block["attention"](normed, normed, attention_mask=attention_mask, training=training)
            hidden = block["ffn_output"](block["ffn_hidden"](block["ffn_norm"](x)))
            x = (x + block["dropout"](hidden, training=training)) * keep
        return self.output_norm(x) * keep

    def get_config(self):
        return {
            **super().get_config(),
            "max_length": self.max_length,
            "num_blocks": self.num_blocks,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
        }


@keras.utils.register_keras_serializable(package="tfshop")
class HistoryState(keras.layers.Layer):
    """A right-padded behaviour history → the causal transformer's state after its newest event.

    Inputs: ``[vectors (B, L, d), ids (B, L)]`` with the most recent event last and padding
    (id 0) after it, as the input pipeline yields histories. Padding is moved to the left and a
    :class:`CausalSequenceEncoder` reads the sequence; returns ``(B, d)``, zeros for an empty
    history.
    """

    def __init__(
        self, max_length: int, num_blocks: int = 1, num_heads: int = 1, dropout: float = 0.2, **kwargs
    ):
        super().__init__(**kwargs)
        self.encoder = CausalSequenceEncoder(max_length, num_blocks, num_heads, dropout, name="encoder")

    def call(self, inputs, training=None):
        vectors, ids = inputs
        length = tf.reduce_sum(tf.cast(ids > 0, tf.int32), axis=1)
        width = tf.shape(ids)[1]
        index = (tf.range(width)[None] + length[:, None]) % width  # row i rolled right by its padding
        vectors = tf.gather(vectors, index, batch_dims=1)
        mask = tf.gather(ids, index, batch_dims=1) > 0
        return self.encoder([vectors, mask], training=training)[:, -1]

    def get_config(self):
        encoder = self.encoder
        return {
            **super().get_config(),
            "max_length": encoder.max_length,
            "num_blocks": encoder.num_blocks,
            "num_heads": encoder.num_heads,
            "dropout": encoder.dropout,
        }
