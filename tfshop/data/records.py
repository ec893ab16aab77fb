"""Writing examples as gzip TFRecords of ``tf.train.Example``, typed by the schema, and the shard
manifest that lets readers tell a complete shard from a truncated one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tfshop.data.schema import Schema
from tfshop.errors import DataError

SHARD_MANIFEST = "shards.json"


ENCODE_ROWS = 65_536  # rows encoded at a time: bounds the serialized records held in memory


def write_records(path: Path, df: pd.DataFrame, schema: Schema) -> int:
    """Writes every row of ``df`` as one Example with the schema's features and labels. tfx-bsl's
    C++ encoder turns each column (an Arrow list array) into one-feature Examples; a row's record
    is their concatenation in schema order, which protobuf parses as one Example (encoding the
    columns together would order each record's features at random: more gzip bytes, other bytes
    on every run)."""
    import tensorflow as tf  # here, so that prepare's configs load (and fail) without TensorFlow
    from tfx_bsl.coders.example_coder import RecordBatchToExamplesEncoder

    columns = {
        f.name: _arrow_column(df, f.name, f.dtype, f.default, f.kind == "sequence") for f in schema.features
    }
    for label in schema.labels:
        columns[label.name] = _arrow_column(df, label.name, label.dtype, label.default, False)
    encoder = RecordBatchToExamplesEncoder()
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for start in range(0, len(df), ENCODE_ROWS):
            parts = [
                encoder.encode(pa.RecordBatch.from_pydict({name: array.slice(start, ENCODE_ROWS)}))
                for name, array in columns.items()
            ]
            for record in map(b"".join, zip(*parts)):
                writer.write(record)
    return len(df)


def _arrow_column(df: pd.DataFrame, name: str, dtype: str, default, nested: bool) -> pa.ListArray:
    """One feature as a list per row, as the encoder takes it: a sequence's values as bytes, a
    scalar as a one-value list (a missing value as ``default``)."""
    if nested:
        lists = pa.array(df[name], from_pandas=True)  # lists, or an Arrow column of lists
        if isinstance(lists, pa.ChunkedArray):
            lists = lists.combine_chunks()
        values = lists.flatten()
        if not pa.types.is_string(values.type) and not pa.types.is_null(values.type):
            values = pa.array([str(v) for v in values.to_pylist()])  # ids given as numbers
        offsets = pc.subtract(lists.offsets, lists.offsets[0])  # a slice's offsets start above 0
        return pa.ListArray.from_arrays(offsets, values.cast(pa.binary()))
    values = df[name] if name in df else pd.Series(default, index=df.index)
    if dtype == "string":
        array = _text(values.fillna(default))
    elif dtype == "int64":
        array = pa.array(values.fillna(default).to_numpy("int64"))
    else:
        array = pa.array(values.fillna(default).to_numpy("float32"))
    return pa.ListArray.from_arrays(pa.array(np.arange(len(array) + 1, dtype=np.int32)), array)


def _text(values: pd.Series) -> pa.Array:
    """Text as Arrow bytes without a Python string per value where the column holds text already."""
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a mixed column
        array = None
    if array is None or not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pa.array(values.astype(str))  # numbers named as text: pandas' spelling, as read back
    return array.cast(pa.binary())


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
