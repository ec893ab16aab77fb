"""Small text encoders that run inside the graph on raw strings."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


@keras.utils.register_keras_serializable(package="tfshop")
class HashedBagOfWords(keras.layers.Layer):
    """Mean of hashed word and word-bigram embeddings of lower-cased text; "" gives zeros.

    A fast text encoder with no vocabulary file: words are hashed into ``num_bins`` buckets.
    """

    def __init__(self, num_bins: int = 50_000, dim: int = 32, max_words: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_bins, self.dim, self.max_words = num_bins, dim, max_words
        self.embedding = keras.layers.Embedding(num_bins + 1, dim, mask_zero=True)

    def call(self, text):
        text = tf.reshape(text, [-1])
        words = tf.strings.split(tf.strings.lower(text))[:, : self.max_words]
        bigrams = tf.strings.ngrams(words, 2, separator=" ")
        tokens = tf.concat([words, bigrams], axis=1)
        ids = tf.strings.to_hash_bucket_fast(tokens, self.num_bins) + 1
        dense = ids.to_tensor(default_value=0)
        vectors = self.embedding(dense)
        mask = tf.cast(dense > 0, vectors.dtype)[..., None]
        return tf.reduce_sum(vectors * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "dim": self.dim,
            "max_words": self.max_words,
        }
