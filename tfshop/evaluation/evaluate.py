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

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset, naming_corrupt_shards
from tfshop.data.schema import Schema
from tfshop.evaluation.retrieval import retrieval_report
from tfshop.models.config import ModelConfig
from tfshop.training.targets import Targets


def collect(model: keras.Model, data_dir: Path, split: str, targets: Targets, schema: Schema) -> dict:
    """Predictions, targets, weights, user and item ids and ground truth for a whole split."""
    batches: dict[str, list] = {}
    user_id, item_id = schema.name_of("user_id"), schema.name_of("item_id")
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
            for role, name in (("user_id", user_id), ("item_id", item_id)):
                if name in features:
                    rows[role] = features[name]
            for name in ("truth_p_click", "truth_p_cvr"):
                if name in labels:
                    rows[name] = labels[name]
            for key, value in rows.items():
                batches.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in batches.items()}


def priors(data_dir: Path, targets: Targets, schema: Schema) -> dict[str, np.ndarray]:
    """Per output, the constant prediction learnt from the train split."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, float] = {}
    kinds = {name: kind for name, kind in targets.output_types().items() if kind.has_head}
    tasks = {t.name: t for t in targets.tasks}
    for features, labels in make_dataset(data_dir, "train", InputConfig(batch_size=8192), schema):
        _, y, w = targets(features, labels)
        for name, kind in kinds.items():
            weight = w[name].numpy()
            value = kind.prior_target(tasks.get(name), y[name].numpy())
            sums[name] = sums.get(name, 0) + (value * weight[:, None]).sum(axis=0)
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
        if not kind.has_head:  # retrieval: the towers rank the catalogue
            task = next(t for t in targets.tasks if t.name == name)
            report[name] = retrieval_report(model, data_dir, schema, task, model_config, split)
            continue
        keep = data[f"w/{name}"] > 0
        y = data[f"y/{name}"][keep]
        users = data["user_id"][keep] if "user_id" in data else None
        rows = {"multitask": kind.scores(y, data[f"p/{name}"][keep], users)}
        constant = np.broadcast_to(prior[name], (int(keep.sum()), len(prior[name])))
        rows["prior"] = kind.scores(y, constant, users)
        if single_task and name in single_task:
            config, single_schema = single_task_config(model_config, name, schema)
            single = collect(
                single_task[name], data_dir, split, Targets(data_dir, single_schema, config), schema
            )
            rows["single_task"] = kind.scores(y, single[f"p/{name}"][keep], users)
        oracle = _oracle(name, data)
        if oracle is not None:
            rows["oracle"] = kind.scores(y, oracle[keep], users)
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


def summary_table(report: dict, headlines: dict[str, str]) -> str:
    """Markdown: one row per output, the headline metric of each model."""
    columns = ["multitask", "single_task", "prior", "oracle"]
    lines = ["| output | metric | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for name, rows in report.items():
        metric = headlines[name]
        cells = [f"{rows[c][metric]:.4f}" if c in rows else "–" for c in columns]
        lines.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: dict, targets: Targets, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_report.json").write_text(json.dumps(report, indent=2) + "\n")
    headlines = {name: kind.headline for name, kind in targets.output_types().items()}
    (out / "eval_report.md").write_text(summary_table(report, headlines) + "\n")
