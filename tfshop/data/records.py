"""Writing examples as gzip TFRecords of ``tf.train.Example``, typed by the schema, and the shard
manifest that lets readers tell a complete shard from a truncated one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tfshop.data.schema import Schema
from tfshop.errors import DataError

SHARD_MANIFEST = "shards.json"


def _column(df: pd.DataFrame, name: str, dtype: str, default, nested: bool):
    if nested:
        return [[str(v).encode() for v in values] for values in df[name]]
    values = df[name] if name in df else pd.Series(default, index=df.index)
    if dtype == "string":
        return [v.encode() for v in values.fillna(default).astype(str)]
    if dtype == "int64":
        return values.fillna(default).astype("int64").tolist()
    return values.fillna(default).astype("float64").tolist()


def write_records(path: Path, df: pd.DataFrame, schema: Schema) -> int:
    """Writes every row of ``df`` as one Example with the schema's features and labels."""
    import tensorflow as tf  # here, so that prepare's configs load (and fail) without TensorFlow

    columns = []
    for f in schema.features:
        columns.append((f.name, f.dtype, _column(df, f.name, f.dtype, f.default, f.kind == "sequence")))
    for label in schema.labels:
        columns.append((label.name, label.dtype, _column(df, label.name, label.dtype, label.default, False)))
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i in range(len(df)):
            example = tf.train.Example()
            feature = example.features.feature
            for name, dtype, values in columns:
                value = values[i]
                if dtype == "string":
                    if isinstance(value, list):
                        feature[name].bytes_list.value.extend(value)
                    else:
                        feature[name].bytes_list.value.append(value)
                elif dtype == "int64":
                    feature[name].int64_list.value.append(value)
                else:
                    feature[name].float_list.value.append(value)
            writer.write(example.SerializeToString())
    return len(df)


def write_shard_manifest(folder: Path) -> None:
    """Records the byte size of every shard in ``folder`` in ``shards.json``.

    A gzip TFRecord shard cut short at a record boundary reads as a valid, shorter file, so
    truncation is only visible against the size the shard was written with.
    """
    sizes = {p.name: p.stat().st_size for p in sorted(folder.glob("*.tfrecord.gz"))}
    (folder / SHARD_MANIFEST).write_text(json.dumps(sizes, indent=2) + "\n")


def checked_shards(folder: Path, split: str) -> list[str]:
    """The split's shards, sorted; a DataError if there are none, or if one is missing, unlisted, or
    of another size than when it was written."""
    manifest = folder / SHARD_MANIFEST
    if not manifest.exists():
        raise DataError(f"{folder}: no {SHARD_MANIFEST} (is this a prepared dataset? prepare it again)")
    written = {
        name: size for name, size in json.loads(manifest.read_text()).items() if name.startswith(f"{split}-")
    }
    present = {p.name for p in folder.glob(f"{split}-*.tfrecord.gz")}
    if not written:
        raise DataError(f"{folder}: no {split}-*.tfrecord.gz files (is this a prepared dataset?)")
    problems = [f"{name} is missing" for name in sorted(written.keys() - present)]
    problems += [f"{name} is not in {SHARD_MANIFEST}" for name in sorted(present - written.keys())]
    problems += [
        f"{name} has {size} bytes, {written[name]} were written (truncated or overwritten)"
        for name in sorted(present & written.keys())
        if (size := (folder / name).stat().st_size) != written[name]
    ]
    if problems:
        raise DataError(f"{folder}: {'; '.join(problems)}; prepare the dataset again")
    return [str(folder / name) for name in sorted(written)]
