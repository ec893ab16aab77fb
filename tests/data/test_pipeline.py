import pytest
import tensorflow as tf

from tfshop.data.pipeline import InputConfig, make_dataset, naming_corrupt_shards, split_files
from tfshop.data.schema import Schema
from tfshop.errors import DataError


def ids(dataset):
    return [bytes(x) for features, _ in dataset for x in features["item_id"].numpy()]


def test_batches_of_raw_features_and_labels(small_dataset):
    schema = Schema.load(small_dataset)
    features, labels = next(iter(make_dataset(small_dataset, "train", InputConfig(batch_size=32))))
    assert set(features) == {f.name for f in schema.features}
    assert set(labels) == {label.name for label in schema.labels}
    assert features["item_id"].dtype == tf.string and features["item_id"].shape == (32,)
    assert features["price"].dtype == tf.float32
    assert features["hist_item_ids"].shape == (32, schema.feature("hist_item_ids").max_len)
    assert labels["click"].dtype == tf.int64
    assert labels["query_intent"].dtype == tf.string
    assert {"truth_p_click", "truth_p_cvr"} <= set(labels)


def test_deterministic_mode_repeats_and_shuffle_permutes(small_dataset):
    plain = InputConfig(batch_size=256, deterministic=True)
    first, second = (
        ids(make_dataset(small_dataset, "valid", plain)),
        ids(make_dataset(small_dataset, "valid", plain)),
    )
    assert first == second
    shuffled = InputConfig(batch_size=256, deterministic=True, shuffle=True, seed=1, cache=True)
    mixed = ids(make_dataset(small_dataset, "valid", shuffled))
    assert mixed != first and sorted(mixed) == sorted(first)


def test_repeat_and_drop_remainder(small_dataset):
    config = InputConfig(batch_size=100, repeat=True, drop_remainder=True)
    batches = list(make_dataset(small_dataset, "valid", config).take(50))
    assert all(labels["click"].shape == (100,) for _, labels in batches)


def test_missing_split(small_dataset, tmp_path):
    with pytest.raises(DataError, match="no holdout-"):
        split_files(small_dataset, "holdout")
    with pytest.raises(DataError, match="schema not found"):
        make_dataset(tmp_path, "train")


def test_a_truncated_shard_is_named(small_dataset, tmp_path):
    import shutil

    copy = tmp_path / "dataset"
    shutil.copytree(small_dataset, copy)
    shard = sorted(copy.glob("train-*.tfrecord.gz"))[1]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with (
        pytest.raises(
            DataError, match=rf"{shard.name}: corrupt or truncated TFRecord shard after \d+ records"
        ),
        naming_corrupt_shards(copy),
    ):
        for _ in make_dataset(copy, "train", InputConfig(batch_size=1024)):
            pass
