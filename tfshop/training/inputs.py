"""The inputs of ``model.fit`` for each strategy: the train split and the valid split, sharded.

One process (``default``, ``mirrored``) reads the whole split. Under ``multi_worker`` each worker
reads its own files (or every n-th record when there are fewer files than workers) and every
worker runs the same number of steps. Under ``parameter_server`` each worker builds its own
repeated, shuffled shard through a ``DatasetCreator``. ``train.batch_size`` is always the global
batch: the batch of one step over all replicas.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset, split_files
from tfshop.data.schema import Schema

log = logging.getLogger(__name__)
VALID_BATCH = 4096


class TrainingInputs:
    """Builds the train and valid datasets of one ``fit`` call."""

    def __init__(self, data_dir: Path, schema: Schema, targets, config, strategy: tf.distribute.Strategy):
        self.data_dir, self.schema, self.targets, self.config = data_dir, schema, targets, config
        self.strategy = strategy
        distributed = config.strategy in ("multi_worker", "parameter_server")
        # a backup inside an epoch is resumed at its step, which needs epochs of a known length
        self.repeats = bool(config.steps_per_epoch or config.backup_every_steps) or distributed
        self.validation_steps = (
            batches(data_dir, "valid", VALID_BATCH) if config.strategy == "parameter_server" else None
        )
        if distributed:
            log.info("global batch %d over %d replicas", config.batch_size, strategy.num_replicas_in_sync)

    def train(self):
        if self.config.strategy == "parameter_server":
            return keras.utils.experimental.DatasetCreator(self._worker_train)
        return self._sharded(self._read("train", self.config.batch_size, shuffle=True, repeat=self.repeats))

    def valid(self):
        if self.config.strategy == "parameter_server":
            return keras.utils.experimental.DatasetCreator(self._worker_valid)
        return self._sharded(self._read("valid", VALID_BATCH, shuffle=False, repeat=False))

    def _read(self, split, batch_size, shuffle, repeat, seed=None, shard=None) -> tf.data.Dataset:
        config = InputConfig(
            batch_size=batch_size,
            shuffle=shuffle,
            shuffle_buffer=self.config.shuffle_buffer,
            seed=self.config.seed if seed is None else seed,
            repeat=repeat,
        )
        dataset = make_dataset(self.data_dir, split, config, self.schema, shard=shard)
        return dataset.map(self.targets, num_parallel_calls=tf.data.AUTOTUNE)

    def _sharded(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """Multi-worker: whole files per worker where there are enough, else records."""
        if self.config.strategy != "multi_worker":
            return dataset
        workers = self.strategy.extended._num_workers
        enough = len(split_files(self.data_dir, "train")) >= workers
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.FILE if enough else tf.data.experimental.AutoShardPolicy.DATA
        )
        return dataset.with_options(options)

    def _worker_train(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        shard = (context.num_input_pipelines, context.input_pipeline_id)
        batch = context.get_per_replica_batch_size(self.config.batch_size)
        seed = self.config.seed + context.input_pipeline_id
        return self._read("train", batch, shuffle=True, repeat=True, seed=seed, shard=shard)

    def _worker_valid(self, context: tf.distribute.InputContext) -> tf.data.Dataset:
        return self._read("valid", VALID_BATCH, shuffle=False, repeat=True)


def batches(data_dir: Path, split: str, batch_size: int) -> int:
    """Batches of ``batch_size`` in one pass over ``split`` (from the prepare report)."""
    report = json.loads((Path(data_dir) / "prepare_report.json").read_text())
    return max(1, -(-report["examples"][split] // batch_size))
