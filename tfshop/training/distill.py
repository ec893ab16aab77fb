"""Distilling the pretrained sentence encoder into a small, fast student.

The student is a hashed bag of words and word bigrams (``HashedBagOfWords``) followed by a
projection to the teacher's width and L2 normalisation: no attention, no vocabulary file, and
an encode cost that does not grow with a transformer's depth. It learns to reproduce the
teacher's unit embeddings of the same texts (loss: −cosine), so it can stand in for the
teacher wherever its embeddings are used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.layers.text import HashedBagOfWords

log = logging.getLogger(__name__)


@dataclass
class StudentConfig:
    num_bins: int = 200_000  # hash buckets for words and bigrams
    dim: int = 256  # width of the bag-of-words embedding
    max_words: int = 32
    epochs: int = 8
    batch_size: int = 256
    learning_rate: float = 3e-3
    seed: int = 0


def build_student(output_dim: int, config: StudentConfig) -> keras.Model:
    """Strings ``(batch,)`` → unit vectors ``(batch, output_dim)``."""
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    words = HashedBagOfWords(config.num_bins, config.dim, config.max_words, name="words")(text)
    projected = keras.layers.Dense(output_dim, name="projection")(words)
    return keras.Model(text, keras.layers.UnitNormalization(name="normalize")(projected), name="student")


def distill(
    texts: list[str], teacher_vectors: np.ndarray, config: StudentConfig | None = None
) -> keras.Model:
    """Trains a student to give ``teacher_vectors[i]`` for ``texts[i]`` (cosine loss)."""
    config = config or StudentConfig()
    if len(texts) != len(teacher_vectors) or not len(texts):
        raise ValueError(f"{len(texts)} texts for {len(teacher_vectors)} teacher vectors")
    keras.utils.set_random_seed(config.seed)
    student = build_student(teacher_vectors.shape[1], config)
    student.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=keras.losses.CosineSimilarity(),  # −cosine: lowest where the student points as the teacher
    )
    data = (
        tf.data.Dataset.from_tensor_slices(
            (np.asarray(texts, dtype=object), teacher_vectors.astype(np.float32))
        )
        .shuffle(len(texts), seed=config.seed)
        .batch(config.batch_size)
    )
    history = student.fit(data, epochs=config.epochs, verbose=0)
    log.info("distilled a student on %d texts: final cosine %.4f", len(texts), -history.history["loss"][-1])
    return student
