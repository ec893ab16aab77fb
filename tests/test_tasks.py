"""Each task type on its own: head, target and sample space, loss, report and prior."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from tfshop.data.schema import Task
from tfshop.tasks import TASK_TYPES, task_type

CLASSES = ["red", "green", "blue"]


def classes() -> tf.lookup.StaticHashTable:
    init = tf.lookup.KeyValueTensorInitializer(CLASSES, tf.range(3, dtype=tf.int64))
    return tf.lookup.StaticHashTable(init, default_value=-1)


TASKS = {
    "binary": Task("ctr", "binary", "click"),
    "multiclass": Task("colour", "multiclass", "colour", num_classes=3, vocab="vocab/colour.txt"),
    "multilabel": Task("colours", "multilabel", "colours", num_classes=3, vocab="vocab/colour.txt"),
    "regression": Task("rating", "regression", "rating"),
    "retrieval": Task("retrieval", "retrieval", "click"),
}
LABELS = {
    "binary": tf.constant([1, 0, -1, 1], tf.int64),
    "multiclass": tf.constant(["blue", "", "nope", "red"]),
    "multilabel": tf.constant([["red", "blue"], ["", ""], ["nope", ""], ["green", "green"]]),
    "regression": tf.constant([4.0, -1.0, 2.0, 5.0]),
    "retrieval": tf.constant([1, 0, 0, 1], tf.int64),
}
TARGETS = {  # (target, sample space)
    "binary": ([1, 0, 0, 1], [1, 1, 0, 1]),
    "multiclass": ([2, 0, 0, 0], [1, 0, 0, 1]),
    "multilabel": ([[1, 0, 1], [0, 0, 0], [0, 0, 0], [0, 1, 0]], [1, 0, 0, 1]),
    "regression": ([4, -1, 2, 5], [1, 0, 1, 1]),
    "retrieval": ([1, 0, 0, 1], [1, 0, 0, 1]),
}


def test_every_registered_type_is_tested():
    assert set(TASKS) == set(TASK_TYPES)


@pytest.mark.parametrize("name", sorted(TASK_TYPES))
def test_target_and_sample_space(name):
    y, w = task_type(name).target(TASKS[name], LABELS[name], -1.0, classes())
    assert y.numpy().tolist() == TARGETS[name][0]
    assert w.numpy().tolist() == TARGETS[name][1]


@pytest.mark.parametrize("name", [n for n, t in sorted(TASK_TYPES.items()) if t.has_head])
def test_head_loss_and_report(name):
    kind, task = task_type(name), TASKS[name]
    y, w = kind.target(task, LABELS[name], -1.0, classes())
    x = keras.Input((4,))
    model = keras.Model(x, kind.head(task, x, label_mean=3.0))
    assert model.output.name.startswith(task.name)
    p = model(tf.ones((4, 4))).numpy()
    assert p.shape == ((4, 1) if not kind.has_classes else (4, 3))
    assert np.isfinite(float(kind.loss()(y, p, sample_weight=w)))
    report = kind.scores(y.numpy()[w.numpy() > 0], p[w.numpy() > 0], None)
    assert kind.headline in report and report["count"] == int(w.numpy().sum())


def test_regression_head_starts_at_the_label_mean():
    x = keras.Input((4,))
    head = task_type("regression").head(TASKS["regression"], x, label_mean=3.5)
    assert keras.Model(x, head)(tf.zeros((2, 4))).numpy().ravel().tolist() == [3.5, 3.5]


def test_prior_targets_average_to_the_constant_prediction():
    assert task_type("multiclass").prior_target(TASKS["multiclass"], np.array([2, 0])).tolist() == [
        [0, 0, 1],
        [1, 0, 0],
    ]
    assert task_type("binary").prior_target(TASKS["binary"], np.array([1.0, 0.0])).tolist() == [[1], [0]]


def test_retrieval_trains_the_towers_not_a_head():
    kind = task_type("retrieval")
    assert not kind.has_head and kind.default_weight == 0.1 and kind.metrics() == []
