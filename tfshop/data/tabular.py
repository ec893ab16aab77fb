"""Prepare for tables whose rows already are examples: any CSV or Parquet, declared in YAML.

The ``tabular`` section of a pipeline config names the files (one per split, or one file split
at random by ``valid_fraction``/``test_fraction``), the feature columns by kind and role and the
tasks by type, label and weight. Roles (``tfshop.data.schema.ROLES``) tell the model which column
is the item, the user, the query, the title or a behaviour history, whatever its name; a column
named as prepare names it (``item_id``, ``hist_item_ids``, ...) gets that role unless declared.
Sequence columns hold lists (Parquet) or ``sequence_separator``-joined strings (CSV). With a
``retrieval`` task the training rows' items make the catalogue that the item tower reads.
The output is the same dataset directory as ``prepare``'s, so the model,
training, evaluation and export run unchanged. Rows whose numeric or label values do not parse
go to ``quarantine/`` with a reason and are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tfshop.data import schema as sch
from tfshop.data.catalogue import write_catalogue
from tfshop.data.clean import MAX_ABS_VALUE, out_of_range, out_of_range_reason
from tfshop.data.dataset_writer import DatasetWriter
from tfshop.data.sources.files import read_table
from tfshop.data.statistics import NumericStatistics, VocabularyBuilder
from tfshop.data.tables import SPLITS, as_strings
from tfshop.errors import ConfigError, DataError


@dataclass
class TabularFeature:
    name: str
    kind: sch.FeatureKind = "categorical"
    hash_buckets: int = 0  # > 0: hash instead of a vocabulary (use for user ids)
    roles: list[str] | None = None  # None: the roles of the canonical column of this name, if any
    max_len: int = 20  # sequences: the last max_len values are kept


@dataclass
class TabularTask:
    name: str
    type: str = "binary"  # binary | regression | retrieval (of the clicked item: label > 0)
    label: str = ""
    weight: float | None = None  # None: the model config's default
    parent: str | None = None


@dataclass
class TabularConfig:
    """Files, columns and tasks of a table of examples."""

    train: str = ""
    valid: str = ""
    test: str = ""
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0
    features: list[TabularFeature] = field(default_factory=list)
    tasks: list[TabularTask] = field(default_factory=list)
    vocab_min_count: int = 1
    num_oov_buckets: int = 1
    sequence_separator: str = "|"  # between the values of a sequence column read as text
    max_abs_value: float = MAX_ABS_VALUE  # a row with a number beyond it (or ±inf) is quarantined

    def validate(self) -> None:
        if not self.train:
            raise ValueError("train: the path of the training table is required")
        if not self.features:
            raise ValueError("features: declare at least one feature column")
        if not self.tasks:
            raise ValueError("tasks: declare at least one task")
        if not self.max_abs_value > 0:
            raise ValueError("max_abs_value: must be positive")
        for task in self.tasks:
            if not task.label:
                raise ValueError(f"tasks.{task.name}.label: the label column is required")
            if task.type not in ("binary", "regression", "retrieval"):
                raise ValueError(f"tasks.{task.name}.type: tabular tasks are binary, regression or retrieval")


def prepare_tabular(config: TabularConfig, out: str | Path, overwrite: bool = False) -> Path:
    """Writes a dataset directory from the configured tables."""
    with DatasetWriter(out, overwrite) as dataset:
        _write_dataset(config, _read_splits(config), dataset)
    return Path(out)


def _read_splits(config: TabularConfig) -> dict[str, pd.DataFrame]:
    files = {s: Path(getattr(config, s)) for s in SPLITS if getattr(config, s)}
    tables = {split: (path, read_table(path)) for split, path in files.items()}
    needed = [f.name for f in config.features] + [t.label for t in config.tasks]
    for path, table in tables.values():
        missing = [c for c in needed if c not in table.columns]
        if missing:
            raise DataError(f"{path}: missing column {missing[0]!r} declared in the tabular config")
        if table.empty:
            raise DataError(f"{path}: no rows")
    frames = {split: table for split, (_, table) in tables.items()}
    if set(frames) == {"train"}:
        order = np.random.default_rng(config.seed).permutation(len(frames["train"]))
        n_test = int(len(order) * config.test_fraction)
        n_valid = int(len(order) * config.valid_fraction)
        table = frames["train"]
        frames = {
            "test": table.iloc[order[:n_test]],
            "valid": table.iloc[order[n_test : n_test + n_valid]],
            "train": table.iloc[order[n_test + n_valid :]],
        }
    return {split: frame.reset_index(drop=True) for split, frame in frames.items()}


def _write_dataset(config: TabularConfig, splits: dict[str, pd.DataFrame], dataset: DatasetWriter) -> None:
    features = [_feature(f, config) for f in config.features]
    labels = [
        sch.Label(t.label, "float32", -1.0) if t.type == "regression" else sch.Label(t.label, "int64", 0)
        for t in config.tasks
    ]
    labels = list({label.name: label for label in labels}.values())
    folder, vocab, numeric = dataset.folder, VocabularyBuilder(), NumericStatistics()
    cleaned = {}
    for split, table in splits.items():
        good, reasons = _coerce(table, features, labels, config)
        dataset.quarantine(table[reasons != ""], reasons[reasons != ""])
        cleaned[split] = good
    train = cleaned["train"]
    for task in config.tasks:
        if task.type != "regression" and not (train[task.label] > 0).any():
            raise DataError(f"tasks.{task.name}: label {task.label!r} has no positive rows in train")
    tasks = [sch.Task(t.name, t.type, t.label, weight=t.weight, parent=t.parent) for t in config.tasks]
    for task in tasks:
        task.validate()
    schema = sch.Schema(features=features, labels=labels, tasks=tasks)
    try:
        schema.validate()
    except ValueError as err:
        raise ConfigError(f"tabular.{err}") from None
    shared = schema.shared_vocabularies()
    for f in features:
        if f.kind == "numeric":
            numeric.add(f.name, train[f.name])
        elif not f.hash_buckets and f.kind != "text" and f.name not in shared:
            vocab.add(f.name, train[f.name], nested=f.kind == "sequence")
    for label in labels:
        if label.dtype == "float32":
            numeric.add(f"label:{label.name}", train[label.name])
    vocab.write_schema_vocabularies(schema, folder, config.vocab_min_count, 0)
    if any(t.type == "retrieval" for t in tasks):
        _write_catalogue(schema, train, folder)
    for split, rows in cleaned.items():
        dataset.write_shard(split, 0, rows, schema, [lb.name for lb in labels if lb.dtype == "int64"])
    stats = {
        "numeric": {f.name: numeric.summary(f.name) for f in features if f.kind == "numeric"},
        "labels": {lb.name: numeric.summary(f"label:{lb.name}") for lb in labels if lb.dtype == "float32"},
    }
    dataset.finish(schema, stats)


def _write_catalogue(schema: sch.Schema, train: pd.DataFrame, folder: Path) -> None:
    """The training rows' items (each with its last row's item fields) as the catalogue."""
    item = schema.with_role("item_id")
    if item is None or not item.vocab:
        raise ConfigError("tabular.tasks: a retrieval task needs a feature with role item_id (not hashed)")
    fields = [f.name for f in schema.features if set(f.roles) & set(sch.ITEM_ROLES) and f.name != item.name]
    items = train.drop_duplicates(item.name, keep="last").set_index(item.name)[fields]
    write_catalogue(schema, folder, items, Counter(train[item.name]))


def _feature(declared: TabularFeature, config: TabularConfig) -> sch.Feature:
    numeric = declared.kind == "numeric"
    feature = sch.Feature(
        name=declared.name,
        kind=declared.kind,
        dtype="float32" if numeric else "string",
        default=float("nan") if numeric else "",
        hash_buckets=declared.hash_buckets,
        num_oov_buckets=config.num_oov_buckets,
        max_len=declared.max_len if declared.kind == "sequence" else 0,
        roles=list(sch.CANONICAL_ROLES.get(declared.name, []) if declared.roles is None else declared.roles),
    )
    try:
        feature.validate()
    except ValueError as err:
        raise ConfigError(f"tabular.features.{err}") from None
    return feature


def _coerce(table: pd.DataFrame, features: list[sch.Feature], labels: list[sch.Label], config: TabularConfig):
    """Typed columns, and a reason per row ("" for good rows) for values that do not parse or
    are out of range."""
    out = pd.DataFrame(index=table.index)
    reasons = pd.Series("", index=table.index, dtype=object)
    for column in [*features, *labels]:
        raw = table[column.name]
        if getattr(column, "kind", None) == "sequence":
            values = [_sequence(v, config.sequence_separator)[-column.max_len :] for v in raw]
            out[column.name] = pd.Series(values, index=table.index, dtype=object)
            continue
        if column.dtype == "string":
            out[column.name] = as_strings(raw)
            continue
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        number = pd.to_numeric(raw.where(~blank), errors="coerce")
        reasons[(number.isna() & ~blank) & (reasons == "")] = f"unparseable {column.name}"
        beyond = out_of_range(number, config.max_abs_value)
        reasons[beyond & (reasons == "")] = out_of_range_reason(column.name, config.max_abs_value)
        if isinstance(column, sch.Label):
            reasons[blank & (reasons == "")] = f"missing label {column.name}"
        out[column.name] = number
    good = reasons == ""
    return out[good].reset_index(drop=True), reasons


def _sequence(value, separator: str) -> list[str]:
    """A sequence cell: a list (Parquet) or a ``separator``-joined string; missing is empty."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value if str(v)]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [v for v in str(value).split(separator) if v]
