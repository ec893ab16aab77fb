"""Writing examples as gzip TFRecords of ``tf.train.Example``, typed by the schema."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import tensorflow as tf

from tfshop.data.schema import Schema


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
