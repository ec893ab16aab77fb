"""Labels → per-output targets and sample weights, and the matching losses and metrics.

Each task's sample space is expressed as sample weights: a task with a ``parent`` learns only on
rows where the parent's label is positive (CVR on clicked rows), a multiclass task only on rows
with a known class, a multilabel task only on rows with at least one known class (its target is
multi-hot), a binary or regression task only on rows that carry a value (labels use -1 for
none). A text task's label may be a feature column. ESMM's ``ctcvr`` output learns the purchase
label on every impression. A retrieval task learns on the clicked rows.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from tfshop.data.schema import Schema, Task
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import esmm_pair, model_tasks
from tfshop.models.retrieval import InBatchSoftmax


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
        self.inputs = [f.name for f in schema.features if f.name not in config.exclude_features]
        self.tables = {
            t.name: class_table(Path(data_dir), t)
            for t in self.tasks
            if t.type in ("multiclass", "multilabel")
        }
        by_name = {t.name: t for t in self.tasks}
        self.parent_label = {t.name: by_name[t.parent].label for t in self.tasks if t.parent in by_name}
        self.weights = {t.name: config.loss_weights.get(t.name, t.weight) for t in self.tasks}
        if self.pair:
            self.weights["ctcvr"] = config.loss_weights.get("ctcvr", 1.0)

    def __call__(self, features, labels):
        y, w = {}, {}
        for task in self.tasks:
            label = labels[task.label] if task.label in labels else features[task.label]
            if task.type == "multiclass":
                index = self.tables[task.name].lookup(label)
                y[task.name], w[task.name] = tf.maximum(index, 0), tf.cast(index >= 0, tf.float32)
            elif task.type == "multilabel":  # (batch, max_len) class names, "" padding
                hot = tf.reduce_sum(
                    tf.one_hot(self.tables[task.name].lookup(label), task.num_classes), axis=1
                )
                y[task.name] = tf.minimum(hot, 1.0)
                w[task.name] = tf.cast(tf.reduce_sum(hot, axis=1) > 0, tf.float32)
            elif task.type == "regression":
                y[task.name] = tf.cast(label, tf.float32)
                w[task.name] = tf.cast(label != self.labels[task.label].default, tf.float32)
            elif task.type == "retrieval":  # the clicked rows' items against the batch's items
                y[task.name] = tf.cast(label > 0, tf.float32)
                w[task.name] = y[task.name]
            else:
                y[task.name], w[task.name] = tf.cast(label > 0, tf.float32), tf.cast(label >= 0, tf.float32)
            if task.name in self.parent_label:
                w[task.name] *= tf.cast(labels[self.parent_label[task.name]] > 0, tf.float32)
        if self.pair:
            cvr = next(t for t in self.tasks if t.name == self.pair[1])
            y["ctcvr"] = tf.cast(labels[cvr.label] > 0, tf.float32)
            w["ctcvr"] = tf.ones_like(y["ctcvr"])
        return {name: features[name] for name in self.inputs}, y, {k: _per_space(v) for k, v in w.items()}

    def output_types(self) -> dict[str, str]:
        types = {t.name: t.type for t in self.tasks}
        if self.pair:
            types["ctcvr"] = "binary"
        return types

    def compile_args(self) -> dict:
        """``loss``, ``loss_weights`` and ``weighted_metrics`` for ``model.compile``."""
        loss, metrics = {}, {}
        for name, kind in self.output_types().items():
            if kind == "binary":
                loss[name] = keras.losses.BinaryCrossentropy()
                metrics[name] = [keras.metrics.AUC(name="auc")]
            elif kind == "multiclass":
                loss[name] = keras.losses.SparseCategoricalCrossentropy()
                metrics[name] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            elif kind == "multilabel":
                loss[name] = keras.losses.BinaryCrossentropy()
                metrics[name] = [
                    keras.metrics.Precision(name="precision"),
                    keras.metrics.Recall(name="recall"),
                ]
            elif kind == "retrieval":
                loss[name] = InBatchSoftmax()
            else:
                loss[name] = keras.losses.MeanSquaredError()
                metrics[name] = [keras.metrics.RootMeanSquaredError(name="rmse")]
        return {"loss": loss, "loss_weights": dict(self.weights), "weighted_metrics": metrics}
