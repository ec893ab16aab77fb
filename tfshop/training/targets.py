"""Labels → per-output targets and sample weights, and the matching losses, weights and metrics.

Each task's type (``tfshop.tasks``) turns its label into a target and a sample space; a task with
a ``parent`` learns only on rows where the parent's label is positive (CVR on clicked rows). The
sample spaces go to ``fit`` as sample weights, scaled to average 1 over a batch. A text task's
label may be a feature column. ESMM's ``ctcvr`` output learns the purchase label on every
impression.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tfshop.data.schema import Schema, Task
from tfshop.models.config import DEFAULT_LOSS_WEIGHTS, ModelConfig
from tfshop.models.multitask import esmm_pair, model_tasks
from tfshop.tasks import TaskType, task_type


def class_table(data_dir: Path, task: Task) -> tf.lookup.StaticHashTable:
    """Class name → index from the task's vocabulary file; unknown (and "") → -1."""
    initializer = tf.lookup.TextFileInitializer(
        str(data_dir / task.vocab),
        tf.string,
        tf.lookup.TextFileIndex.WHOLE_LINE,
        tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


def _per_space(mask: tf.Tensor) -> tf.Tensor:
    """``mask`` scaled so that its mean over the batch is 1 (all zeros stay zeros)."""
    size = tf.cast(tf.size(mask), tf.float32)
    return mask * size / tf.maximum(tf.reduce_sum(mask), 1.0)


class Targets:
    """Maps ``(features, labels)`` batches to ``(features, targets, sample_weights)``."""

    def __init__(self, data_dir: str | Path, schema: Schema, config: ModelConfig):
        self.tasks = model_tasks(schema, config)
        self.pair = esmm_pair(self.tasks, config)
        self.labels = {label.name: label for label in schema.labels}
        self.inputs = [f.name for f in config.input_features(schema)]
        self.tables = {
            t.name: class_table(Path(data_dir), t) for t in self.tasks if task_type(t.type).has_classes
        }
        by_name = {t.name: t for t in self.tasks}
        self.parent_label = {t.name: by_name[t.parent].label for t in self.tasks if t.parent in by_name}
        self.weights = {t.name: loss_weight(t, config) for t in self.tasks}
        if self.pair:
            self.weights["ctcvr"] = config.loss_weights.get("ctcvr", 1.0)

    def __call__(self, features, labels):
        y, w = {}, {}
        for task in self.tasks:
            label = labels[task.label] if task.label in labels else features[task.label]
            missing = self.labels[task.label].default if task.label in self.labels else None
            y[task.name], w[task.name] = task_type(task.type).target(
                task, label, missing, self.tables.get(task.name)
            )
            if task.name in self.parent_label:
                w[task.name] *= tf.cast(labels[self.parent_label[task.name]] > 0, tf.float32)
        if self.pair:
            cvr = next(t for t in self.tasks if t.name == self.pair[1])
            y["ctcvr"] = tf.cast(labels[cvr.label] > 0, tf.float32)
            w["ctcvr"] = tf.ones_like(y["ctcvr"])
        return {name: features[name] for name in self.inputs}, y, {k: _per_space(v) for k, v in w.items()}

    def columns(self) -> set[str]:
        """The features and labels a batch needs: the model's inputs and every label."""
        return set(self.inputs) | set(self.labels) | {t.label for t in self.tasks}

    def output_types(self) -> dict[str, TaskType]:
        """Each output's (and the retrieval task's) type; ESMM's ``ctcvr`` is binary."""
        types = {t.name: task_type(t.type) for t in self.tasks}
        if self.pair:
            types["ctcvr"] = task_type("binary")
        return types

    def compile_args(self) -> dict:
        """``loss``, ``loss_weights`` and ``weighted_metrics`` for ``model.compile``."""
        types = self.output_types()
        return {
            "loss": {name: kind.loss() for name, kind in types.items()},
            "loss_weights": dict(self.weights),
            "weighted_metrics": {name: kind.metrics() for name, kind in types.items() if kind.metrics()},
        }


def loss_weight(task: Task, config: ModelConfig) -> float:
    """The model config's weight for the task, else the schema's, else the model default."""
    if task.name in config.loss_weights:
        return config.loss_weights[task.name]
    if task.weight is not None:
        return task.weight
    return DEFAULT_LOSS_WEIGHTS.get(task.name, task_type(task.type).default_weight)
