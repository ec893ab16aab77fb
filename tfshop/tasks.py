"""Task types: everything one kind of prediction task means, in one place.

Each type says how its head turns the shared features into a prediction, how a label becomes a
target and a sample space (a 0/1 weight per row), which loss and training metrics it compiles
with, how the test split is scored and which metric heads the report, and what the constant
**prior** prediction is. The schema names a task's type; the model, the targets, training and
evaluation ask :func:`task_type` and never branch on the name. Adding a type means one class
here (registered in ``TASK_TYPES``) and its test.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.evaluation.metrics import (
    binary_metrics,
    multiclass_metrics,
    multilabel_metrics,
    regression_metrics,
)
from tfshop.layers.retrieval import InBatchSoftmax


class TaskType:
    """One task type. ``task`` arguments are :class:`tfshop.data.schema.Task` objects."""

    name: str = ""
    headline: str = ""  # the report's headline metric
    has_classes: bool = False  # classes named in a vocabulary file (``task.vocab``)
    has_head: bool = True  # False: trained through other layers (retrieval's towers)
    default_weight: float = 1.0  # loss weight when neither the schema nor the model config sets one

    def head(self, task, x, label_mean: float = 0.0):
        """The named output layer over the task's tower ``x``."""
        raise NotImplementedError

    def target(self, task, label: tf.Tensor, missing, classes) -> tuple[tf.Tensor, tf.Tensor]:
        """(target, 0/1 sample space) of a batch of labels; ``missing``: the label's "no value"
        default; ``classes``: the class lookup table (types with classes)."""
        raise NotImplementedError

    def loss(self) -> keras.losses.Loss:
        raise NotImplementedError

    def metrics(self) -> list[keras.metrics.Metric]:
        """Metrics ``fit`` logs per epoch (cheap, streaming)."""
        return []

    def scores(self, y: np.ndarray, p: np.ndarray, users: np.ndarray | None) -> dict[str, float]:
        """The report's metrics of predictions ``p`` for targets ``y`` on a whole split."""
        raise NotImplementedError

    def prior_target(self, task, y: np.ndarray) -> np.ndarray:
        """Per row, the vector whose weighted train-split mean is the constant prior prediction."""
        return y.reshape(len(y), -1)


class Binary(TaskType):
    name, headline = "binary", "auc"

    def head(self, task, x, label_mean=0.0):
        return keras.layers.Dense(1, activation="sigmoid", name=task.name)(x)

    def target(self, task, label, missing, classes):  # labels use -1 for "no value"
        return tf.cast(label > 0, tf.float32), tf.cast(label >= 0, tf.float32)

    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self):
        return [keras.metrics.AUC(name="auc")]

    def scores(self, y, p, users):
        return binary_metrics(y, p.reshape(-1), users)


class Multiclass(TaskType):
    name, headline, has_classes = "multiclass", "macro_f1", True

    def head(self, task, x, label_mean=0.0):
        return keras.layers.Dense(task.num_classes, activation="softmax", name=task.name)(x)

    def target(self, task, label, missing, classes):  # only rows with a known class
        index = classes.lookup(label)
        return tf.maximum(index, 0), tf.cast(index >= 0, tf.float32)

    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def scores(self, y, p, users):
        return multiclass_metrics(y.astype(int), p)

    def prior_target(self, task, y):
        return np.eye(task.num_classes)[y.astype(int)]


class Multilabel(TaskType):
    name, headline, has_classes = "multilabel", "micro_f1", True

    def head(self, task, x, label_mean=0.0):
        return keras.layers.Dense(task.num_classes, activation="sigmoid", name=task.name)(x)

    def target(self, task, label, missing, classes):
        """Multi-hot over (batch, max_len) class names ("" padding); rows with a known class."""
        hot = tf.reduce_sum(tf.one_hot(classes.lookup(label), task.num_classes), axis=1)
        return tf.minimum(hot, 1.0), tf.cast(tf.reduce_sum(hot, axis=1) > 0, tf.float32)

    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self):
        return [keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]

    def scores(self, y, p, users):
        return multilabel_metrics(y, p)


class Regression(TaskType):
    name, headline = "regression", "rmse"

    def head(self, task, x, label_mean=0.0):  # starts at the train mean, so early errors stay small
        start = keras.initializers.Constant(label_mean)
        return keras.layers.Dense(1, bias_initializer=start, name=task.name)(x)

    def target(self, task, label, missing, classes):  # rows that carry a value
        return tf.cast(label, tf.float32), tf.cast(label != missing, tf.float32)

    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [keras.metrics.RootMeanSquaredError(name="rmse")]

    def scores(self, y, p, users):
        return regression_metrics(y, p.reshape(-1))


class Retrieval(TaskType):
    """The clicked rows' items against the batch's items, through the query and item towers
    (``tfshop.models.towers``); scored by ranking the catalogue (``tfshop.evaluation.retrieval``)."""

    name, headline, has_head, default_weight = "retrieval", "hr@10", False, 0.1

    def target(self, task, label, missing, classes):
        clicked = tf.cast(label > 0, tf.float32)
        return clicked, clicked

    def loss(self):
        return InBatchSoftmax()


TASK_TYPES: dict[str, TaskType] = {
    t.name: t for t in (Binary(), Multiclass(), Multilabel(), Regression(), Retrieval())
}


def task_type(name: str) -> TaskType:
    return TASK_TYPES[name]
