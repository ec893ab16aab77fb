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


def test_item_embedding_starts_from_a_next_item_model(small_shop, small_dataset, tmp_path):
    from tfshop.data.sequences import load_sequences, prepare_sequences
    from tfshop.models.sequential import NextItemModel, save_next_item
    from tfshop.models.sequential_config import SequentialConfig
    from tfshop.training.warm_start import item_embedding_from

    prepare_sequences(small_shop, tmp_path / "sequences")
    data = load_sequences(tmp_path / "sequences")
    next_item = NextItemModel(data.num_items, SequentialConfig(dim=32, max_length=5), data.train_counts())
    next_item({"items": np.ones((1, 2), np.int32)})  # built: untrained vectors serve as well here
    save_next_item(next_item, tmp_path / "pretrain" / "model", data.item_ids)
    schema = Schema.load(small_dataset)
    model = build_model(small_dataset, ModelConfig(embedding_dim=8), schema)
    before = model.get_layer("item_id_embedding").embeddings.numpy()
    vocabulary = model.get_layer("item_id_lookup").get_vocabulary()
    shared = set(vocabulary) & set(data.item_ids)
    assert item_embedding_from(model, schema, tmp_path / "pretrain") == len(shared) > 100
    after = model.get_layer("item_id_embedding").embeddings.numpy()
    changed = {vocabulary[row] for row in np.flatnonzero((after != before).any(axis=1))}
    assert changed == shared  # the others keep their fresh rows
    rows = [vocabulary.index(item) for item in sorted(shared)]
    assert after[rows].std() == pytest.approx(before.std(), rel=0.05)  # at the fresh rows' scale
    # the 8 principal components of the 32-wide vectors keep their geometry: the nearest item stays near
    wide = next_item.item_vectors().numpy()[[data.item_ids.index(item) for item in sorted(shared)]]
    wide -= wide.mean(axis=0)
    narrow = after[rows]
    similarity = np.corrcoef((wide @ wide.T).ravel(), (narrow @ narrow.T).ravel())[0, 1]
    assert similarity > 0.5
    with pytest.raises(ConfigError, match="not a next-item run's pretrain or train directory"):
        item_embedding_from(model, schema, tmp_path)
