"""The inputs of ``model.fit`` for each strategy: the train split and the valid split, sharded.

One process (``default``, ``mirrored``) reads the whole split. Under ``multi_worker`` each worker
reads its own files (or every n-th record when there are fewer files than workers) and every
worker runs the same number of steps. Under ``parameter_server`` each worker builds its own
repeated, shuffled shard through a ``DatasetCreator``. ``train.batch_size`` is always the global
batch: the batch of one step over all replicas. In one process, splits that fit in memory
(``train.input_cache``) are parsed once and gathered from memory (``tfshop.data.in_memory``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import psutil
import tensorflow as tf
import tf_keras as keras

from tfshop.data.in_memory import InMemorySplit, estimated_bytes
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
        # a backup inside an epoch is resumed at its step, and several steps per call into the
        # graph need a known number of them: both need epochs of a known length
        known_length = config.steps_per_epoch or config.backup_every_steps or config.steps_per_call > 1
        self.repeats = bool(known_length) or distributed
        known_validation = config.validation and (
            config.strategy == "parameter_server" or config.steps_per_call > 1
        )
        self.validation_steps = batches(data_dir, "valid", VALID_BATCH) if known_validation else None
        if distributed:
            log.info("global batch %d over %d replicas", config.batch_size, strategy.num_replicas_in_sync)
        self.in_memory = not distributed and self._fits_in_memory()

    def train(self):
        if self.config.strategy == "parameter_server":
            return keras.utils.experimental.DatasetCreator(self._worker_train)
        if self.in_memory:
            return self._from_memory("train", self.config.batch_size, shuffle=True, repeat=self.repeats)
        return self._sharded(self._read("train", self.config.batch_size, shuffle=True, repeat=self.repeats))

    def valid(self):
        """The valid split's batches; None with ``train.validation: false``."""
        if not self.config.validation:
            return None
        if self.config.strategy == "parameter_server":
            return keras.utils.experimental.DatasetCreator(self._worker_valid)
        if self.in_memory:
            return self._from_memory("valid", VALID_BATCH, shuffle=False, repeat=False)
        return self._sharded(self._read("valid", VALID_BATCH, shuffle=False, repeat=False))

    def _fits_in_memory(self) -> bool:
        if self.config.input_cache != "auto":
            return self.config.input_cache == "memory"
        report = json.loads((self.data_dir / "prepare_report.json").read_text())
        # the train split's columns and, during a pass, their copy in that pass's order
        examples = 2 * report["examples"]["train"] + report["examples"]["valid"] * self.config.validation
        needed = estimated_bytes(self.data_dir, "train", self.schema, self.targets.columns(), examples)
        limit = min(self.config.max_cache_gib * 2**30, psutil.virtual_memory().available / 2)
        log.info(
            "input: %s (the train and valid splits need about %.2f GiB in memory, a shuffled pass's copy "
            "included; limit %.2f GiB)",
            "in memory" if needed <= limit else "streamed",
            needed / 2**30,
            limit / 2**30,
        )
        return needed <= limit

    def _from_memory(self, split, batch_size, shuffle, repeat) -> tf.data.Dataset:
        columns = InMemorySplit.read(self.data_dir, split, self.schema, self.targets.columns())
        dataset = columns.batches(batch_size, shuffle, self.config.seed, repeat)
        return dataset.map(self.targets, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

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
