"""The tf.data input pipeline over a prepared dataset directory.

Files are read in parallel (interleave), records batched and then parsed in one
``parse_example`` call per batch, and the result prefetched. Each element is a pair of dicts of
**raw** values keyed by schema names: ``features`` (strings, floats, fixed-length string
sequences padded at the end with "") and ``labels`` (funnel labels, ratings, intents as strings,
ground truth where known). Turning raw values into ids is the model's job, so training and
serving see the same inputs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tensorflow as tf

from tfshop.data.input_config import InputConfig
from tfshop.data.records import checked_shards
from tfshop.data.schema import Schema
from tfshop.errors import DataError

TF_DTYPES = {"string": tf.string, "int64": tf.int64, "float32": tf.float32}


def split_files(data_dir: str | Path, split: str) -> list[str]:
    """The split's TFRecord shards, sorted, each checked to be whole (see ``checked_shards``)."""
    return checked_shards(Path(data_dir), split)


def parsing_spec(schema: Schema) -> dict:
    """``tf.io.parse_example`` spec for every feature and label of the schema."""
    spec = {}
    for f in schema.features:
        if f.kind == "sequence":
            spec[f.name] = tf.io.VarLenFeature(tf.string)
        else:
            spec[f.name] = tf.io.FixedLenFeature([], TF_DTYPES[f.dtype], default_value=f.default)
    for label in schema.labels:
        default = (
            label.default if label.dtype == "string" else TF_DTYPES[label.dtype].as_numpy_dtype(label.default)
        )
        spec[label.name] = tf.io.FixedLenFeature([], TF_DTYPES[label.dtype], default_value=default)
    return spec


def make_parser(schema: Schema):
    """A function from a batch of serialized Examples to ``(features, labels)``."""
    spec = parsing_spec(schema)
    sequences = {f.name: f.max_len for f in schema.features if f.kind == "sequence"}
    labels = {label.name for label in schema.labels}

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, spec)
        for name, max_len in sequences.items():
            parsed[name] = _fixed_length(parsed[name], max_len)
        features = {k: v for k, v in parsed.items() if k not in labels}
        return features, {k: v for k, v in parsed.items() if k in labels}

    return parse


def _fixed_length(sparse: tf.SparseTensor, max_len: int) -> tf.Tensor:
    dense = tf.sparse.to_dense(sparse, default_value="")[:, :max_len]
    dense = tf.pad(dense, [[0, 0], [0, max_len - tf.shape(dense)[1]]], constant_values="")
    return tf.ensure_shape(dense, [None, max_len])


def make_dataset(
    data_dir: str | Path,
    split: str,
    config: InputConfig | None = None,
    schema: Schema | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Batches of ``(features, labels)`` from one split of a prepared dataset.

    ``shard=(count, index)`` keeps one of ``count`` disjoint parts: whole files when there are at
    least ``count`` of them, else every ``count``-th record.
    """
    config = config or InputConfig()
    schema = schema or Schema.load(data_dir)
    files = split_files(data_dir, split)
    count, index = shard or (1, 0)
    by_file = len(files) >= count
    if by_file:
        files = files[index::count]
    ds = tf.data.Dataset.from_tensor_slices(files)
    if config.shuffle:
        ds = ds.shuffle(len(files), seed=config.seed)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type="GZIP"),
        cycle_length=min(len(files), 4),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=config.deterministic or None,
    )
    if not by_file:
        ds = ds.shard(count, index)
    if config.cache:
        ds = ds.cache()
    if config.shuffle:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed)
    if config.repeat:
        ds = ds.repeat()
    ds = ds.batch(config.batch_size, drop_remainder=config.drop_remainder)
    ds = ds.map(
        make_parser(schema), num_parallel_calls=tf.data.AUTOTUNE, deterministic=config.deterministic or None
    )
    options = tf.data.Options()
    options.deterministic = config.deterministic
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


@contextmanager
def naming_corrupt_shards(data_dir: str | Path) -> Iterator[None]:
    """Turns TensorFlow's anonymous DataLossError while reading ``data_dir`` into one naming the shard."""
    try:
        yield
    except tf.errors.DataLossError as err:
        for file in sorted(Path(data_dir).glob("*.tfrecord.gz")):
            records = 0
            try:
                for _ in tf.data.TFRecordDataset(str(file), compression_type="GZIP"):
                    records += 1
            except tf.errors.DataLossError as found:
                reason = found.message.split("}} ")[-1].split(" [Op:")[0]
                raise DataError(
                    f"{file}: corrupt or truncated TFRecord shard after {records} records ({reason}); "
                    "prepare the dataset again"
                ) from None
        raise DataError(f"{data_dir}: a TFRecord shard could not be read ({err.message})") from None
