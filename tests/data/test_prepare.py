import json

import numpy as np
import pandas as pd
import pytest

from tfshop.data.catalogue import read_catalogue
from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.schema import Schema
from tfshop.data.tables import ShopWriter
from tfshop.errors import DataError

DAY = 86_400


def handmade_shop(path):
    """Three users over 10 days, plus malformed rows, a duplicate and a scraper."""
    rows = []
    for day in range(10):
        t = 1_000_000 + day * DAY
        for user in ("u1", "u2", "u3"):
            imp = f"{user}-{day}"
            item = f"i{(day + int(user[1])) % 4}"
            rows.append((user, item, t, "impression", imp, "red shoes" if day % 2 else ""))
            if (day + int(user[1])) % 3 == 0:
                rows.append((user, item, t + 10, "click", imp, ""))
            if day == 5 and user == "u1":
                rows.append((user, item, t + 20, "purchase", imp, ""))
    rows.append(rows[0])  # logged twice
    rows += [("bot", f"i{k % 4}", 1_000_000 + k, "click", "", "") for k in range(400)]
    bad = [
        ("", "i1", 1_000_000, "click", "", ""),
        ("u1", "i1", "yesterday", "click", "", ""),
        ("u1", "i1", 1_000_000, "wishlist", "", ""),
    ]
    columns = ["user_id", "item_id", "timestamp", "behavior", "impression_id", "query"]
    with ShopWriter(path) as writer:
        writer.write_events(pd.DataFrame(rows, columns=columns))
        writer.write_events(pd.DataFrame(bad, columns=columns))
        writer.write_events(
            pd.DataFrame([(*rows[1][:4], "", "", float("inf"))], columns=[*columns, "position"])
        )
        bad.append(rows[1])
        writer.write_items(
            pd.DataFrame(
                {
                    "item_id": ["i0", "i1", "i2"],
                    "title": ["a", "b", "c"],
                    "category": ["x > y", "x > z", "w > y"],
                    "price": [1.0, 2.0, float("-inf")],
                }
            )
        )
        profile = {"user_id": ["u1", "u2", "u3"], "tier": ["1", "2", "2"], "age": [30.0, 4e12, 40.0]}
        writer.write_users(pd.DataFrame(profile))
        return writer.close("test"), len(rows), len(bad)


def read_all(dataset, split, **options):
    rows = []
    for features, labels in make_dataset(dataset, split, InputConfig(batch_size=7, **options)):
        columns = {**features, **labels}
        for i in range(len(labels["click"])):
            rows.append({k: v[i].numpy() for k, v in columns.items()})
    return rows


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    folder = tmp_path_factory.mktemp("handmade")
    shop, n_rows, n_bad = handmade_shop(folder / "shop")
    config = PrepareConfig(
        valid_fraction=0.2,
        test_fraction=0.2,
        history_length=3,
        partitions=2,
        max_actions_per_hour=100,
        min_timestamp=500_000,
        max_timestamp=2_000_000,
    )
    dataset = prepare(shop, folder / "dataset", config)
    return dataset, n_rows, n_bad


def test_report_accounts_for_every_row(handmade):
    dataset, n_rows, n_bad = handmade
    report = json.loads((dataset / "prepare_report.json").read_text())
    assert report["rows_read"] == n_rows + n_bad
    assert report["rows_valid"] == n_rows
    assert report["duplicates_removed"] == 1
    assert report["bots"] == {"users": 1, "rows": 400}
    assert report["quarantined"] == {
        "missing user_id": 1,
        "unparseable timestamp": 1,
        "unknown behavior": 1,
        "position not finite or beyond ±1e+12": 1,
        "bot: over 100 actions in one hour": 400,
    }
    assert report["set_to_missing"] == {"items.price": 1, "users.age": 1}
    stats = json.loads((dataset / "stats.json").read_text())["numeric"]
    assert (stats["price"]["max"], stats["age"]["max"]) == (2.0, 40.0)
    quarantined = pd.read_parquet(dataset / "quarantine")
    assert len(quarantined) == n_bad + 400
    assert "yesterday" in quarantined["timestamp"].tolist()
    assert sum(report["examples"].values()) == 30  # 3 users x 10 days, one impression each
    assert report["unknown_items"] == 30 // 4 + 1  # item i3 has no catalogue row


def test_pipeline_yields_exactly_the_examples(handmade):
    dataset, _, _ = handmade
    rows = {s: read_all(dataset, s, deterministic=True) for s in ("train", "valid", "test")}
    assert [len(rows[s]) for s in ("train", "valid", "test")] == [18, 6, 6]
    everything = [r for split in rows.values() for r in split]
    seen = sorted(
        (r["user_id"].decode(), r["item_id"].decode(), int(r["click"]), int(r["purchase"]))
        for r in everything
    )
    expected = sorted(
        (u, f"i{(d + int(u[1])) % 4}", int((d + int(u[1])) % 3 == 0), int(d == 5 and u == "u1"))
        for d in range(10)
        for u in ("u1", "u2", "u3")
    )
    assert seen == expected
    # Time split: the last two days are test, the two before valid.
    test_items = sorted(r["item_id"].decode() + r["user_id"].decode() for r in rows["test"])
    assert test_items == sorted(f"i{(d + int(u[1])) % 4}{u}" for d in (8, 9) for u in ("u1", "u2", "u3"))
    # Item fields are joined; unknown items keep defaults rather than being dropped.
    by_item = {r["item_id"].decode(): r for r in everything}
    assert by_item["i1"]["title"] == b"b" and by_item["i1"]["top_category"] == b"x"
    assert by_item["i3"]["title"] == b"" and by_item["i3"]["price"] == 0.0
    assert {r["tier"] for r in everything} == {b"1", b"2"}
    assert all(r["hist_item_ids"].shape == (3,) for r in everything)


def test_schema_vocab_and_privacy(handmade):
    dataset, _, _ = handmade
    schema = Schema.load(dataset)
    tasks = ["ctr", "cvr", "item_category", "retrieval"]  # no attributes, no queries
    assert [t.name for t in schema.tasks] == tasks
    assert schema.tasks[1].parent == "ctr"
    assert schema.tasks[2].label == "category" and schema.tasks[2].inputs == ["title"]
    user = schema.feature("user_id")
    assert user.hash_buckets > 0 and user.vocab is None
    item_vocab = (dataset / "vocab/item_id.txt").read_text().split()
    assert set(item_vocab) <= {"i0", "i1", "i2", "i3"}
    assert schema.feature("hist_item_ids").vocab == "vocab/item_id.txt"
    for file in dataset.rglob("*.txt"):
        assert "u1" not in file.read_text().split(), f"user id in clear in {file}"
    stats = json.loads((dataset / "stats.json").read_text())
    assert stats["numeric"]["price"]["min"] >= 0.0


def test_without_history_and_with_a_user_vocabulary(handmade, tmp_path):
    """history_length 0 leaves the history features out; user_hash_buckets 0 lists the training
    split's user ids in a vocabulary instead of hashing them."""
    dataset, _, _ = handmade
    shop = dataset.parent / "shop"
    config = PrepareConfig(
        history_length=0, user_hash_buckets=0, partitions=2, min_timestamp=500_000, max_timestamp=2_000_000
    )
    schema = Schema.load(prepare(shop, tmp_path / "dataset", config))
    assert not [f.name for f in schema.features if f.name.startswith("hist_")]
    user = schema.feature("user_id")
    assert user.hash_buckets == 0 and user.vocab == "vocab/user_id.txt"
    assert set((tmp_path / "dataset" / user.vocab).read_text().split()) == {"u1", "u2", "u3"}
    row = read_all(tmp_path / "dataset", "train")[0]
    assert "hist_item_ids" not in row and row["user_id"] in (b"u1", b"u2", b"u3")


def test_history_never_sees_the_future(small_shop, small_dataset):
    """Every history item was acted on by that user strictly before the example was shown."""
    events = pd.read_parquet(small_shop / "events")
    acted = events[events["behavior"] != "impression"]
    first_action = acted.groupby(["user_id", "item_id"])["timestamp"].min().to_dict()
    shown = events[events["behavior"] == "impression"].set_index("impression_id")["timestamp"]
    checked = 0
    for features, _ in make_dataset(small_dataset, "test", InputConfig(batch_size=512)):
        users = features["user_id"].numpy()
        for user, history in zip(users, features["hist_item_ids"].numpy()):
            for item in history[history != b""]:
                assert (user.decode(), item.decode()) in first_action
                checked += 1
    assert checked > 1000
    assert len(shown) > 0


def test_pipeline_counts_match_the_report(small_dataset):
    report = json.loads((small_dataset / "prepare_report.json").read_text())
    for split in ("train", "valid", "test"):
        rows = clicks = 0
        for _, labels in make_dataset(small_dataset, split, InputConfig(batch_size=1000)):
            rows += len(labels["click"])
            clicks += int(np.sum(labels["click"]))
        assert rows == report["examples"][split]
        assert clicks == report["labels"][split]["click"]
    assert report["bots"]["users"] >= 1


def test_given_split_is_kept_and_histories_hold_training_events_only(tmp_path):
    """A split that does not follow time (e.g. a published random split) is taken as given."""
    rows = [
        (user, f"i{k}", 1_000_000 + 100 * k, "click", f"{user}-{k}", ("train", "valid", "test")[k % 3])
        for user in ("u1", "u2")
        for k in range(12)
    ]
    rows.append(("u1", "i99", 1_000_000, "click", "bad", "holdout"))
    columns = ["user_id", "item_id", "timestamp", "behavior", "impression_id", "split"]
    with ShopWriter(tmp_path / "shop") as writer:
        writer.write_events(pd.DataFrame(rows, columns=columns))
        writer.write_items(pd.DataFrame({"item_id": [f"i{k}" for k in range(13)], "title": "t"}))
        writer.close("test")
    config = PrepareConfig(split="given", max_actions_per_hour=0, history_length=20)
    dataset = prepare(tmp_path / "shop", tmp_path / "dataset", config)
    for index, split in enumerate(("train", "valid", "test")):
        for row in read_all(dataset, split):
            k = int(row["item_id"].decode()[1:])
            assert k % 3 == index
            history = [h.decode() for h in row["hist_item_ids"] if h]
            assert history == [f"i{j}" for j in range(0, k, 3)]  # earlier training events only
        assert len(read_all(dataset, split)) == 8
    report = json.loads((dataset / "prepare_report.json").read_text())
    assert report["quarantined"] == {"split not train, valid or test": 1}
    # the catalogue: the vocabulary (training items), then the item table's other items
    catalogue = read_catalogue(dataset)["item_id"].tolist()
    assert sorted(catalogue[:4]) == ["i0", "i3", "i6", "i9"]
    assert catalogue[4:] == sorted({f"i{k}" for k in range(13)} - {"i0", "i3", "i6", "i9"})
    with pytest.raises(DataError, match="'given' needs a split column"):
        prepare(handmade_shop(tmp_path / "plain")[0], tmp_path / "out", config)


def test_failures_leave_nothing_half_written(tmp_path):
    with ShopWriter(tmp_path / "shop") as writer:
        writer.write_events(
            pd.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": ["never"], "behavior": ["click"]})
        )
        writer.close("test")
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    (out / "schema.json").write_text("{}")  # a dataset prepare wrote: --overwrite may replace it
    with pytest.raises(DataError, match="already exists"):
        prepare(tmp_path / "shop", out)
    with pytest.raises(DataError, match="no valid events"):
        prepare(tmp_path / "shop", out, overwrite=True)
    assert (out / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "shop"]


def test_catalogue_lists_every_item_with_its_fields(small_shop, small_dataset):
    catalogue = read_catalogue(small_dataset)
    schema = Schema.load(small_dataset)
    vocabulary = (small_dataset / schema.feature("item_id").vocab).read_text().splitlines()
    shop_items = pd.read_parquet(small_shop / "items.parquet").set_index("item_id")
    ids = catalogue["item_id"].tolist()
    assert ids[: len(vocabulary)] == vocabulary  # then the items never shown in training
    assert ids[len(vocabulary) :] == sorted(set(shop_items.index) - set(vocabulary))
    items = shop_items.loc[ids]
    assert catalogue["title"].tolist() == items["title"].tolist()
    np.testing.assert_allclose(catalogue["price"], items["price"])
    assert all(
        list(a) == [t for t in b.split(";") if t]
        for a, b in zip(catalogue["attributes"], items["attributes"])
    )
    report = json.loads((small_dataset / "prepare_report.json").read_text())
    assert catalogue["train_impressions"].sum() == report["examples"]["train"]
    assert "user_id" not in catalogue and "retrieval" in [t.name for t in schema.tasks]


def test_shards_written_by_worker_processes_equal_a_serial_run(small_shop, small_dataset, tmp_path):
    """The shared dataset's shards came from worker processes (one per core); written in one
    process they are the same bytes, with the same statistics and report counts."""
    serial = prepare(small_shop, tmp_path / "serial", PrepareConfig(partitions=3, workers=1))
    shards = sorted(p.name for p in small_dataset.glob("*.tfrecord.gz"))
    assert shards == sorted(p.name for p in serial.glob("*.tfrecord.gz")) and len(shards) == 9
    for name in [*shards, "stats.json", "schema.json", "shards.json"]:
        assert (serial / name).read_bytes() == (small_dataset / name).read_bytes(), name
    report, serial_report = (
        json.loads((d / "prepare_report.json").read_text()) for d in (small_dataset, serial)
    )
    assert report["examples"] == serial_report["examples"] and report["labels"] == serial_report["labels"]
