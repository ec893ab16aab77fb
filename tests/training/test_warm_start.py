"""Incremental training: a new time window prepared with the old vocabularies, trained from the old model."""

import dataclasses
import json

import numpy as np
import pytest
import tf_keras as keras

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.schema import Schema
from tfshop.data.simulate import START_TIMESTAMP, SimulateConfig, simulate
from tfshop.errors import ConfigError
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import build_model
from tfshop.training.config import TrainConfig
from tfshop.training.train import train
from tfshop.training.warm_start import warm_start

DAY = 86_400
MODEL = ModelConfig.of(tasks=["ctr", "cvr"], embedding_dim=8, expert_units=[16], tower_units=[8])


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    """Days 0-7 and days 7-14 of one simulated shop, the second with the first's vocabularies."""
    folder = tmp_path_factory.mktemp("windows")
    shop = simulate(
        SimulateConfig(events=60_000, items=400, days=14, seed=11, chunk_users=400), folder / "shop"
    )
    first = prepare(shop, folder / "first", PrepareConfig(partitions=2, window_to=START_TIMESTAMP + 7 * DAY))
    second = prepare(
        shop,
        folder / "second",
        PrepareConfig(partitions=2, window_from=START_TIMESTAMP + 7 * DAY, vocab_from=str(first)),
    )
    fresh = prepare(
        shop, folder / "fresh", PrepareConfig(partitions=2, window_from=START_TIMESTAMP + 7 * DAY)
    )
    return first, second, fresh


def test_the_new_window_keeps_the_old_vocabularies(windows):
    first, second, fresh = windows
    report = json.loads((second / "prepare_report.json").read_text())
    first_report = json.loads((first / "prepare_report.json").read_text())
    assert report["outside_window"] == first_report["rows_valid"] and report["rows_valid"] > 0
    assert "timestamp out of range" not in report["quarantined"]  # a window is not a data error
    assert Schema.load(second) == Schema.load(first)
    assert (second / "vocab" / "item_id.txt").read_text() == (first / "vocab" / "item_id.txt").read_text()
    assert (fresh / "vocab" / "item_id.txt").read_text() != (first / "vocab" / "item_id.txt").read_text()
    assert any("values new here map to OOV" in note for note in report["notes"])


def test_warm_start_copies_every_weight_and_refuses_other_vocabularies(windows, tmp_path):
    first, second, fresh = windows
    short = TrainConfig(epochs=1, batch_size=256, steps_per_epoch=5, verbose=0)
    train(first, tmp_path / "day1", MODEL, short)
    # Every trainable weight carries over (models built in one process name their weights apart).
    model = build_model(second, MODEL)
    assert warm_start(model, tmp_path / "day1") == {"copied": len(model.trainable_weights), "fresh": 0}
    # The vocabularies of a window prepared from scratch differ: the warm start refuses them.
    with pytest.raises(ConfigError, match="another vocabulary .* prepare.vocab_from"):
        train(fresh, tmp_path / "bad", MODEL, dataclasses.replace(short, warm_start=str(tmp_path / "day1")))


@pytest.mark.slow  # a quality comparison of two trainings (docs/benchmarks.md measures it day by day)
def test_warm_start_beats_a_cold_start_on_the_new_window(windows, tmp_path):
    first, second, _ = windows
    config = TrainConfig(epochs=2, batch_size=256, steps_per_epoch=40, learning_rate=0.01, verbose=0)
    train(first, tmp_path / "day1", MODEL, config)
    short = TrainConfig(epochs=1, batch_size=256, steps_per_epoch=5, learning_rate=0.002, verbose=0)
    warm = train(
        second, tmp_path / "warm", MODEL, dataclasses.replace(short, warm_start=str(tmp_path / "day1"))
    )
    cold = train(second, tmp_path / "cold", MODEL, short)
    warm_auc, cold_auc = ctr_auc(warm, second), ctr_auc(cold, second)
    print(f"test AUC on the new window: warm {warm_auc:.4f}, cold {cold_auc:.4f}")
    assert warm_auc > 0.6 and warm_auc > cold_auc + 0.03


def ctr_auc(model, dataset) -> float:
    scores, labels = [], []
    for features, label in make_dataset(dataset, "test", InputConfig(batch_size=4096)):
        scores.append(model(features)["ctr"].numpy().ravel())
        labels.append(label["click"].numpy().ravel())
    auc = keras.metrics.AUC()
    auc.update_state(np.concatenate(labels), np.concatenate(scores))
    return float(auc.result())
