"""A split parsed once into in-memory columns, then batched from a new order of the rows each pass.

Streaming a split costs, every epoch, the reading, decompression, shuffling and parsing of each
record: on two cores about as much CPU as the training step itself. A split that fits in memory
is parsed once instead; each epoch then draws a fresh permutation of the rows, gathers the
columns into it and slices the batches off: a full shuffle (not a buffer's) at a fraction of
the cost. The
batches are the same ``(features, labels)`` of raw values that :func:`make_dataset` yields.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import tensorflow as tf

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema

log = logging.getLogger(__name__)
READ_BATCH = 8192
STRING_OVERHEAD = 24  # bytes of one tf.string element besides its characters


class InMemorySplit:
    """The columns of one split (only ``names`` among its features and labels)."""

    def __init__(self, columns: tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]], rows: int):
        self.features, self.labels = columns
        self.rows = rows

    @classmethod
    def read(cls, data_dir: str | Path, split: str, schema: Schema, names: set[str]) -> InMemorySplit:
        started = time.time()
        parts = ([], [])
        for batch in _read(data_dir, split, schema):
            for part, columns in zip(parts, batch):
                part.append({k: v for k, v in columns.items() if k in names})
        if not parts[0]:
            raise ValueError(f"{data_dir}: the {split} split has no examples")
        features, labels = ({k: tf.concat([p[k] for p in part], 0) for k in part[0]} for part in parts)
        rows = int(next(iter({**features, **labels}.values())).shape[0])
        log.info("%s split: %d examples parsed into memory (%.0fs)", split, rows, time.time() - started)
        return cls((features, labels), rows)

    def batches(self, batch_size: int, shuffle: bool, seed: int, repeat: bool) -> tf.data.Dataset:
        """Batches of rows: a new permutation each pass when ``shuffle``, else in order.

        Each pass gathers every column into its new order once, then slices the batches off it:
        one gather per column and pass instead of one per column and batch (a small gather's
        fixed cost, and each string's copy, ran to a fifth of a tabular model's step).
        """
        rows, steps = self.rows, -(-self.rows // batch_size)
        columns = (self.features, self.labels)

        def one_pass(draw):
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(rows, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), draw])
                )
                ordered = tf.nest.map_structure(lambda c: tf.gather(c, order), columns)
            else:
                ordered = columns
            return tf.data.Dataset.range(steps).map(
                lambda i: tf.nest.map_structure(lambda c: c[i * batch_size : (i + 1) * batch_size], ordered)
            )

        draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        batches = (draws if repeat else draws.take(1)).flat_map(one_pass)
        if not repeat:  # a known length, which steps_per_execution needs
            batches = batches.apply(tf.data.experimental.assert_cardinality(steps))
        return batches


def estimated_bytes(data_dir: str | Path, split: str, schema: Schema, names: set[str], examples: int) -> int:
    """Memory the ``names`` columns of ``examples`` rows would take, from the split's first batch."""
    batch = next(iter(_read(data_dir, split, schema, batch_size=1024)))
    size, rows = 0, 1
    for columns in batch:
        for name, column in columns.items():
            if name not in names:
                continue
            values = column.numpy()
            rows = max(rows, len(values))
            if values.dtype == object:
                size += sum(len(v) for v in values.ravel()) + STRING_OVERHEAD * values.size
            else:
                size += values.nbytes
    return int(size / rows * examples)


def _read(data_dir, split, schema, batch_size=READ_BATCH) -> tf.data.Dataset:
    config = InputConfig(batch_size=batch_size, deterministic=True)
    return make_dataset(data_dir, split, config, schema)
