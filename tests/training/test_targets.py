import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import TEXT_TASKS
from tfshop.data.schema import Schema
from tfshop.errors import ConfigError
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import output_names
from tfshop.training.targets import Targets


def batch(schema):
    features = {f.name: tf.constant([""] * 4) for f in schema.features}
    features["category"] = tf.constant(["no > such", "", "", ""])
    features["attributes"] = tf.constant(
        [["colour=red", "style=modern", ""], ["colour=red", "colour=nope", ""], ["", "", ""], ["x", "", ""]]
    )
    labels = {
        "click": tf.constant([1, 0, 1, 0], tf.int64),
        "purchase": tf.constant([1, 0, 0, 0], tf.int64),
        "cart": tf.zeros(4, tf.int64),
        "fav": tf.zeros(4, tf.int64),
        "rating": tf.constant([5.0, -1.0, -1.0, -1.0]),
        "query_intent": tf.constant(["deal", "", "no-such-intent", "browse"]),
        "query_relevance": tf.constant([1, 0, -1, -1], tf.int64),
        "truth_p_click": tf.zeros(4),
        "truth_p_cvr": tf.zeros(4),
    }
    return features, labels


def test_sample_spaces_as_normalised_weights(small_dataset):
    schema = Schema.load(small_dataset)
    targets = Targets(small_dataset, schema, ModelConfig())
    features, labels = batch(schema)
    inputs, y, w = targets(features, labels)
    assert set(inputs) == {f.name for f in schema.features}
    assert y["ctr"].numpy().tolist() == [1, 0, 1, 0] and w["ctr"].numpy().tolist() == [1, 1, 1, 1]
    # CVR learns on clicked rows only; weights average 1 over the batch.
    assert w["cvr"].numpy().tolist() == [2, 0, 2, 0] and y["cvr"].numpy().tolist() == [1, 0, 0, 0]
    assert w["ctcvr"].numpy().tolist() == [1, 1, 1, 1] and y["ctcvr"].numpy().tolist() == [1, 0, 0, 0]
    assert w["rating"].numpy().tolist() == [4, 0, 0, 0]
    intents = (small_dataset / "vocab/query_intent.txt").read_text().split()
    assert y["intent"].numpy()[[0, 3]].tolist() == [intents.index("deal"), intents.index("browse")]
    assert w["intent"].numpy().tolist() == [2, 0, 0, 2]
    # Relevance only where a query was shown (-1 elsewhere); text tasks read feature columns.
    assert y["relevance"].numpy().tolist() == [1, 0, 0, 0] and w["relevance"].numpy().tolist() == [2, 2, 0, 0]
    assert w["item_category"].numpy().tolist() == [0, 0, 0, 0]  # unknown and missing categories
    attributes = (small_dataset / "vocab/attributes.txt").read_text().split()
    hot = y["item_attributes"].numpy()
    assert hot.shape == (4, len(attributes)) and hot.sum(axis=1).tolist() == [2, 1, 0, 0]
    assert hot[0, attributes.index("colour=red")] == hot[0, attributes.index("style=modern")] == 1
    assert w["item_attributes"].numpy().tolist() == [2, 2, 0, 0]


def test_outputs_and_task_selection(small_dataset):
    schema = Schema.load(small_dataset)
    assert output_names(schema, ModelConfig()) == ["ctr", "cvr", "rating", "intent", *TEXT_TASKS, "ctcvr"]
    assert output_names(schema, ModelConfig(tasks=["ctr"])) == ["ctr"]
    assert output_names(schema, ModelConfig(esmm=False)) == ["ctr", "cvr", "rating", "intent", *TEXT_TASKS]
    with pytest.raises(ConfigError, match="model.tasks: no task 'ctx'"):
        output_names(schema, ModelConfig(tasks=["ctx"]))
    compile_args = Targets(small_dataset, schema, ModelConfig(loss_weights={"ctcvr": 3.0})).compile_args()
    assert compile_args["loss_weights"] == {
        "ctr": 3.0,
        "cvr": 1.0,
        "rating": 1.0,
        "intent": 1.0,
        **dict.fromkeys(TEXT_TASKS, 1.0),
        "ctcvr": 3.0,
        "retrieval": 0.1,
    }
    assert np.isclose(sum(compile_args["loss_weights"].values()), 12.1)
