"""Prepare for tables whose rows already are examples: any CSV or Parquet, declared in YAML.

The ``tabular`` section of a pipeline config names the files (one per split, or one file split
at random by ``valid_fraction``/``test_fraction``), the feature columns by kind and the tasks by
type, label and weight. The output is the same dataset directory as ``prepare``'s, so the model,
training, evaluation and export run unchanged. Rows whose numeric or label values do not parse
go to ``quarantine/`` with a reason and are counted.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tfshop.data import schema as sch
from tfshop.data.records import write_records, write_shard_manifest
from tfshop.data.sources.files import read_table
from tfshop.data.statistics import NumericStatistics, VocabularyBuilder
from tfshop.data.tables import SPLITS, as_strings, replace_dir
from tfshop.errors import ConfigError, DataError


@dataclass
class TabularFeature:
    name: str
    kind: sch.FeatureKind = "categorical"
    hash_buckets: int = 0  # > 0: hash instead of a vocabulary (use for user ids)


@dataclass
class TabularTask:
    name: str
    type: str = "binary"  # binary | regression
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

    def validate(self) -> None:
        if not self.train:
            raise ValueError("train: the path of the training table is required")
        if not self.features:
            raise ValueError("features: declare at least one feature column")
        if not self.tasks:
            raise ValueError("tasks: declare at least one task")
        for task in self.tasks:
            if not task.label:
                raise ValueError(f"tasks.{task.name}.label: the label column is required")
            if task.type not in ("binary", "regression"):
                raise ValueError(f"tasks.{task.name}.type: tabular tasks are binary or regression")


def prepare_tabular(config: TabularConfig, out: str | Path, overwrite: bool = False) -> Path:
    """Writes a dataset directory from the configured tables."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists (pass --overwrite to replace it)")
    splits = _read_splits(config)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        _write_dataset(config, splits, tmp)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


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


def _write_dataset(config: TabularConfig, splits: dict[str, pd.DataFrame], folder: Path) -> None:
    features = [_feature(f, config) for f in config.features]
    labels = [
        sch.Label(t.label, "int64" if t.type == "binary" else "float32", 0 if t.type == "binary" else -1.0)
        for t in config.tasks
    ]
    labels = list({label.name: label for label in labels}.values())
    report = {"examples": {}, "quarantined": {}, "labels": {}}
    vocab, numeric = VocabularyBuilder(), NumericStatistics()
    cleaned = {}
    for split, table in splits.items():
        good, reasons = _coerce(table, features, labels)
        if len(reasons):
            folder.joinpath("quarantine").mkdir(exist_ok=True)
            bad = table[reasons != ""].astype(str).assign(reason=reasons[reasons != ""])
            bad.to_parquet(folder / "quarantine" / f"{split}.parquet", index=False)
            for reason, count in bad["reason"].value_counts().items():
                report["quarantined"][reason] = report["quarantined"].get(reason, 0) + int(count)
        cleaned[split] = good
    train = cleaned["train"]
    for task in config.tasks:
        if task.type == "binary" and not (train[task.label] > 0).any():
            raise DataError(f"tasks.{task.name}: label {task.label!r} has no positive rows in train")
    for f in features:
        if f.kind == "numeric":
            numeric.add(f.name, train[f.name])
        elif not f.hash_buckets:
            vocab.add(f.name, train[f.name])
    for label in labels:
        if label.dtype == "float32":
            numeric.add(f"label:{label.name}", train[label.name])
    for f in features:
        if f.kind != "numeric" and not f.hash_buckets:
            f.vocab = f"vocab/{f.name}.txt"
            f.vocab_size = vocab.write(f.name, folder / f.vocab, config.vocab_min_count, 0)
    tasks = [sch.Task(t.name, t.type, t.label, weight=t.weight, parent=t.parent) for t in config.tasks]
    for task in tasks:
        task.validate()
    schema = sch.Schema(features=features, labels=labels, tasks=tasks)
    try:
        schema.validate()
    except ValueError as err:
        raise ConfigError(f"tabular.{err}") from None
    schema.save(folder / "schema.json")
    for split, rows in cleaned.items():
        write_records(folder / f"{split}-00000.tfrecord.gz", rows, schema)
        report["examples"][split] = len(rows)
        report["labels"][split] = {
            lb.name: float(rows[lb.name].sum()) for lb in labels if lb.dtype == "int64"
        }
    write_shard_manifest(folder)
    stats = {
        "numeric": {f.name: numeric.summary(f.name) for f in features if f.kind == "numeric"},
        "labels": {lb.name: numeric.summary(f"label:{lb.name}") for lb in labels if lb.dtype == "float32"},
    }
    (folder / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    (folder / "prepare_report.json").write_text(json.dumps(report, indent=2) + "\n")


def _feature(declared: TabularFeature, config: TabularConfig) -> sch.Feature:
    if declared.kind not in ("id", "categorical", "numeric", "text"):
        raise ConfigError(
            f"tabular.features.{declared.name}.kind: {declared.kind!r} is not supported in tables"
        )
    numeric = declared.kind == "numeric"
    return sch.Feature(
        name=declared.name,
        kind=declared.kind,
        dtype="float32" if numeric else "string",
        default=float("nan") if numeric else "",
        hash_buckets=declared.hash_buckets,
        num_oov_buckets=config.num_oov_buckets,
    )


def _coerce(table: pd.DataFrame, features: list[sch.Feature], labels: list[sch.Label]):
    """Typed columns, and a reason per row ("" for good rows) for values that do not parse."""
    out = pd.DataFrame(index=table.index)
    reasons = pd.Series("", index=table.index, dtype=object)
    for column in [*features, *labels]:
        raw = table[column.name]
        if column.dtype == "string":
            out[column.name] = as_strings(raw)
            continue
        blank = raw.isna() | (raw.astype(str).str.strip() == "")
        number = pd.to_numeric(raw.where(~blank), errors="coerce")
        reasons[(number.isna() & ~blank) & (reasons == "")] = f"unparseable {column.name}"
        if isinstance(column, sch.Label):
            reasons[blank & (reasons == "")] = f"missing label {column.name}"
        out[column.name] = number
    good = reasons == ""
    return out[good].reset_index(drop=True), reasons
