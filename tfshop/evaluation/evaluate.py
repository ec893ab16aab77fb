"""The ``evaluate`` stage: score the test split with each model and compare.

For every output of the main model the report holds its metrics next to a **prior** baseline
(the train split's base rate, class shares or mean; for retrieval, item popularity), any
**single-task** models given, and on simulator data the **oracle** (the ground-truth
probabilities the data were drawn from).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import tf_keras as keras

from tfshop.data.pipeline import InputConfig, make_dataset, naming_corrupt_shards
from tfshop.data.schema import Schema
from tfshop.evaluation.metrics import (
    binary_metrics,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
)
from tfshop.evaluation.retrieval import retrieval_report
from tfshop.models.config import ModelConfig
from tfshop.training.targets import Targets


def collect(model: keras.Model, data_dir: Path, split: str, targets: Targets, schema: Schema) -> dict:
    """Predictions, targets, weights, user ids and ground truth for a whole split."""
    batches: dict[str, list] = {}
    with naming_corrupt_shards(data_dir):
        for features, labels in make_dataset(
            data_dir, split, InputConfig(batch_size=4096, deterministic=True), schema
        ):
            inputs, y, w = targets(features, labels)
            predictions = model(inputs, training=False)
            rows = {
                **{f"y/{k}": v for k, v in y.items()},
                **{f"w/{k}": v for k, v in w.items()},
                **{f"p/{k}": v for k, v in predictions.items()},
            }
            if "user_id" in features:
                rows["user_id"] = features["user_id"]
            for name in ("truth_p_click", "truth_p_cvr"):
                if name in labels:
                    rows[name] = labels[name]
            for key, value in rows.items():
                batches.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in batches.items()}


def output_metrics(kind: str, y, p, users) -> dict[str, float]:
    if kind == "binary":
        return binary_metrics(y, p.reshape(-1), users)
    if kind == "multiclass":
        return multiclass_metrics(y.astype(int), p)
    if kind == "multilabel":
        return multilabel_metrics(y, p)
    return regression_metrics(y, p.reshape(-1))


def priors(data_dir: Path, targets: Targets, schema: Schema) -> dict[str, np.ndarray]:
    """Per output, the constant prediction learnt from the train split."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, float] = {}
    kinds = {name: kind for name, kind in targets.output_types().items() if kind != "retrieval"}
    for features, labels in make_dataset(data_dir, "train", InputConfig(batch_size=8192), schema):
        _, y, w = targets(features, labels)
        for name, kind in kinds.items():
            weight = w[name].numpy()
            value = y[name].numpy()
            if kind == "multiclass":
                size = next(t.num_classes for t in targets.tasks if t.name == name)
                value = np.eye(size)[value.astype(int)]
            total = (value * weight[:, None]).sum(axis=0) if value.ndim == 2 else np.array([value @ weight])
            sums[name] = sums.get(name, 0) + total
            counts[name] = counts.get(name, 0) + weight.sum()
    return {name: sums[name] / max(counts[name], 1.0) for name in kinds}


def evaluate(
    data_dir: str | Path,
    model: keras.Model,
    model_config: ModelConfig,
    single_task: dict[str, keras.Model] | None = None,
    split: str = "test",
    data: dict | None = None,
) -> dict:
    """The evaluation report as a dict: ``{output: {model_name: metrics}}``.

    ``data``: the main model's ``collect`` of ``split`` when the caller already has it.
    """
    data_dir = Path(data_dir)
    schema = Schema.load(data_dir)
    targets = Targets(data_dir, schema, model_config)
    if data is None:
        data = collect(model, data_dir, split, targets, schema)
    prior = priors(data_dir, targets, schema)
    report: dict = {}
    for name, kind in targets.output_types().items():
        if kind == "retrieval":
            task = next(t for t in targets.tasks if t.name == name)
            report[name] = retrieval_report(model, data_dir, schema, task, model_config, split)
            continue
        keep = data[f"w/{name}"] > 0
        y = data[f"y/{name}"][keep]
        users = data["user_id"][keep] if "user_id" in data else None
        rows = {"multitask": output_metrics(kind, y, data[f"p/{name}"][keep], users)}
        constant = np.broadcast_to(prior[name], (int(keep.sum()), len(prior[name])))
        rows["prior"] = output_metrics(kind, y, constant, users)
        if single_task and name in single_task:
            config, single_schema = single_task_config(model_config, name, schema)
            single = collect(
                single_task[name], data_dir, split, Targets(data_dir, single_schema, config), schema
            )
            rows["single_task"] = output_metrics(kind, y, single[f"p/{name}"][keep], users)
        oracle = _oracle(name, data)
        if oracle is not None:
            rows["oracle"] = output_metrics(kind, y, oracle[keep], users)
        report[name] = rows
    return report


def single_task_config(config: ModelConfig, output: str, schema: Schema) -> tuple[ModelConfig, Schema]:
    """A model config (and schema) that trains ``output`` alone with the same architecture.

    ``ctcvr`` alone is a model that learns purchases directly on all impressions.
    """
    if output != "ctcvr":
        return dataclasses.replace(config, tasks=[output], esmm=False), schema
    tasks = [t for t in schema.tasks if t.parent]
    if not tasks:
        raise ValueError("ctcvr needs a task with a parent")
    ctcvr = dataclasses.replace(tasks[0], name="ctcvr", parent=None)
    single_schema = dataclasses.replace(schema, tasks=[ctcvr])
    return dataclasses.replace(config, tasks=["ctcvr"], esmm=False), single_schema


def _oracle(name: str, data: dict) -> np.ndarray | None:
    if "truth_p_click" not in data:
        return None
    click, cvr = data["truth_p_click"], data.get("truth_p_cvr")
    if np.any(click < 0):
        return None
    oracles = {"ctr": click, "cvr": cvr, "ctcvr": None if cvr is None else click * cvr}
    return oracles.get(name)


def summary_table(report: dict) -> str:
    """Markdown: one row per output, headline metric of each model."""
    columns = ["multitask", "single_task", "prior", "oracle"]
    lines = ["| output | metric | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name, rows in report.items():
        metric = next(m for m in ("auc", "micro_f1", "macro_f1", "rmse", "hr@10") if m in rows["multitask"])
        cells = [f"{rows[c][metric]:.4f}" if c in rows else "–" for c in columns]
        lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "eval_report.md").write_text(summary_table(report) + "\n")
