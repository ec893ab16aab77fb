from pathlib import Path

import pytest
import tensorflow as tf

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset, naming_corrupt_shards, split_files
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


@pytest.fixture
def dataset_copy(small_dataset, tmp_path):
    import shutil

    return Path(shutil.copytree(small_dataset, tmp_path / "dataset"))


def test_a_truncated_missing_or_unlisted_shard_is_named(dataset_copy):
    train = sorted(dataset_copy.glob("train-*.tfrecord.gz"))
    train[1].write_bytes(train[1].read_bytes()[: train[1].stat().st_size // 2])
    train[2].unlink()
    (dataset_copy / "train-00099.tfrecord.gz").write_bytes(b"")
    with pytest.raises(DataError) as raised:
        make_dataset(dataset_copy, "train")
    message = str(raised.value)
    assert f"{train[1].name} has {train[1].stat().st_size} bytes" in message
    assert f"{train[2].name} is missing" in message
    assert "train-00099.tfrecord.gz is not in shards.json" in message
    assert split_files(dataset_copy, "valid")  # the other splits are whole
    (dataset_copy / "shards.json").unlink()
    with pytest.raises(DataError, match="no shards.json"):
        split_files(dataset_copy, "valid")


def test_a_corrupt_shard_is_named(dataset_copy):
    shard = sorted(dataset_copy.glob("train-*.tfrecord.gz"))[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, so only reading finds it
    shard.write_bytes(bytes(data))
    with (
        pytest.raises(
            DataError, match=rf"{shard.name}: corrupt or truncated TFRecord shard after \d+ records"
        ),
        naming_corrupt_shards(dataset_copy),
    ):
        for _ in make_dataset(dataset_copy, "train", InputConfig(batch_size=1024)):
            pass
