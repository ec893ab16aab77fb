import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import real_dataset
from tfshop.config import from_dict
from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema
from tfshop.data.tabular import TabularConfig, prepare_tabular
from tfshop.errors import ConfigError, DataError, TrainingError
from tfshop.models.config import ModelConfig
from tfshop.pipeline.checks import sample_inputs
from tfshop.training.config import TrainConfig
from tfshop.training.train import train

FEATURES = [
    {"name": "user", "kind": "id", "hash_buckets": 50},
    {"name": "item", "kind": "id"},
    {"name": "price", "kind": "numeric"},
]
TASKS = [{"name": "ctr", "label": "click"}, {"name": "cvr", "label": "buy", "parent": "ctr"}]


def table(tmp_path, rows=None):
    rows = rows or [("u1", "a", "1.5", 1, 0), ("u2", "b", "x", 0, 0), ("u3", "a", "", 1, 1)] * 10
    path = tmp_path / "log.csv"
    pd.DataFrame(rows, columns=["user", "item", "price", "click", "buy"]).to_csv(path, index=False)
    return path


def config(path, **extra):
    return from_dict(TabularConfig, {"train": str(path), "features": FEATURES, "tasks": TASKS, **extra})


def test_single_file_is_split_and_bad_values_quarantined(tmp_path):
    out = prepare_tabular(config(table(tmp_path), valid_fraction=0.1, test_fraction=0.2), tmp_path / "ds")
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["quarantined"] == {"unparseable price": 10}
    assert sum(report["examples"].values()) == 20
    assert report["examples"] == {k: len(list(_rows(out, k))) for k in ("train", "valid", "test")}
    schema = Schema.load(out)
    assert schema.feature("user").hash_buckets == 50 and schema.feature("user").vocab is None
    assert schema.tasks[1].parent == "ctr"
    assert not (out / "vocab" / "user.txt").exists()
    prices = list(_rows(out, "train"))
    assert {p for p in prices if p == p} == {1.5} and any(p != p for p in prices)  # blanks stay NaN


def test_non_finite_and_absurd_numbers_are_quarantined_and_the_table_trains(tmp_path):
    """One ``inf`` or an absurd number in a column once trained the model to NaN."""
    rows = [(f"u{i % 7}", "ab"[i % 2], str(1 + i % 5), i % 2, int(i % 4 == 0)) for i in range(60)]
    rows[3], rows[8], rows[13] = (
        ("u1", "a", "inf", 1, 0),
        ("u2", "b", "-1e300", 0, 0),
        ("u3", "a", "1e13", 1, 1),
    )
    out = prepare_tabular(config(table(tmp_path, rows), seed=1), tmp_path / "ds")
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["quarantined"] == {"price not finite or beyond ±1e+12": 3}
    stats = json.loads((out / "stats.json").read_text())["numeric"]["price"]
    assert (stats["min"], stats["max"]) == (1.0, 5.0)
    quick = TrainConfig(epochs=1, batch_size=16, verbose=0)
    model = train(out, tmp_path / "run", ModelConfig(embedding_dim=4), quick)
    assert (tmp_path / "run" / "model" / "saved_model.pb").is_file()
    scores = model(sample_inputs(out, model.input_names, "test", 8))
    assert all(np.isfinite(v.numpy()).all() for v in scores.values())


def test_a_loss_that_becomes_nan_stops_training_with_the_output_named(tmp_path):
    rows = [(f"u{i % 7}", "ab"[i % 2], str(1 + i % 5), i % 2, 1e20 if i == 5 else 1.0) for i in range(40)]
    tasks = [*TASKS[:1], {"name": "spend", "type": "regression", "label": "buy"}]
    out = prepare_tabular(config(table(tmp_path, rows), tasks=tasks, max_abs_value=1e30), tmp_path / "ds")
    quick = TrainConfig(epochs=1, batch_size=64, verbose=0)
    named = r"the loss of spend became inf at epoch 1, batch(es 1-[0-9]+| 1): look for"
    with pytest.raises(TrainingError, match=named):
        train(out, tmp_path / "run", ModelConfig(embedding_dim=4), quick)
    assert not (tmp_path / "run" / "model").exists()


def _rows(dataset, split):
    for features, _ in make_dataset(dataset, split, InputConfig(batch_size=64)):
        yield from features["price"].numpy().tolist()


def test_errors(tmp_path):
    path = table(tmp_path)
    with pytest.raises(DataError, match="missing column 'colour' declared"):
        prepare_tabular(config(path, features=[*FEATURES, {"name": "colour"}]), tmp_path / "a")
    no_buys = table(tmp_path, [("u1", "a", "1", 1, 0)] * 20)
    with pytest.raises(DataError, match="tasks.cvr: label 'buy' has no positive rows in train"):
        prepare_tabular(config(no_buys), tmp_path / "b")
    with pytest.raises(ConfigError, match="tasks.cvr.label: the label column is required"):
        from_dict(TabularConfig, {"train": "x", "features": FEATURES, "tasks": [{"name": "cvr"}]})
    path = table(tmp_path)
    with pytest.raises(ConfigError, match="item.roles: 'itme' is not one of user_id, item_id"):
        prepare_tabular(
            config(path, features=[{"name": "item", "kind": "id", "roles": ["itme"]}]), tmp_path / "c"
        )
    with pytest.raises(ConfigError, match="item.roles: a history:item_id feature is a sequence"):
        prepare_tabular(
            config(path, features=[{"name": "item", "roles": ["history:item_id"]}]), tmp_path / "c"
        )
    twice = [{"name": "user", "kind": "id", "roles": ["item_id"]}, {"name": "item", "roles": ["item_id"]}]
    with pytest.raises(ConfigError, match="user.roles: 'item_id' is also the role of 'item'"):
        prepare_tabular(config(path, features=twice), tmp_path / "c")
    assert not any((tmp_path / name).exists() for name in "abc")


def test_ali_ccp_sample(tmp_path):
    folder = real_dataset("torch_rechub_samples")
    features = [
        {"name": "101", "kind": "id", "hash_buckets": 100},
        {"name": "205", "kind": "id"},
        {"name": "D508", "kind": "numeric"},
    ]
    cfg = from_dict(
        TabularConfig,
        {
            "train": str(folder / "ali_ccp_train_sample.csv"),
            "valid": str(folder / "ali_ccp_val_sample.csv"),
            "test": str(folder / "ali_ccp_test_sample.csv"),
            "features": features,
            "tasks": [
                {"name": "ctr", "label": "click"},
                {"name": "cvr", "label": "purchase", "parent": "ctr"},
            ],
        },
    )
    out = prepare_tabular(cfg, tmp_path / "ds")
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["examples"] == {"train": 100, "valid": 50, "test": 50}
    assert report["labels"]["train"] == {"click": 7.0, "purchase": 1.0}
