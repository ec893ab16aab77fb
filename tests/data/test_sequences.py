import gzip
import json

import numpy as np
import pandas as pd
import pytest

from tfshop.data.sequences import load_sequences, prepare_sequences
from tfshop.data.sources import ingest_sequences
from tfshop.data.tables import ShopWriter
from tfshop.errors import DataError


def write_shop(path, rows, items=None):
    columns = ["user_id", "item_id", "timestamp", "behavior"]
    with ShopWriter(path) as writer:
        writer.write_events(pd.DataFrame(rows, columns=columns))
        if items is not None:
            writer.write_items(items)
        writer.close("test")
    return path


def test_sequences_are_each_users_actions_in_time_order(tmp_path):
    rows = [
        ("u1", "b", 20, "click"),
        ("u1", "a", 10, "click"),
        ("u1", "z", 15, "impression"),  # not an action
        ("u1", "b", 21, "cart"),  # the same item again in a row: counted once
        ("u1", "c", 30, "purchase"),
        ("u2", "c", 5, "fav"),  # a single action: nothing to predict
        ("u3", "a", 1, "click"),
        ("u3", "c", 2, "click"),
        ("", "a", 3, "click"),  # no user
        ("u3", "a", "soon", "click"),  # no usable time
        ("u3", "a", 4, "wishlist"),  # not a behaviour
    ]
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "category": ["toys > blocks", "toys > blocks", ""],
            "brand": ["acme", None, "acme"],
            "attributes": ["colour=red;size=s", "", None],
        }
    )
    report = prepare_sequences(write_shop(tmp_path / "shop", rows, items), tmp_path / "data")
    data = load_sequences(tmp_path / "data")
    named = {u: [data.item_ids[i - 1] for i in s] for u, s in zip(data.users, data.sequences)}
    assert named == {"u1": ["a", "b", "c"], "u3": ["a", "c"]}
    assert report["repeats_merged"] == 1 and report["users_skipped_single_action"] == 1
    assert report["skipped_missing_user_item_or_time"] == 2 and report["skipped_unknown_behavior"] == 1
    attributes = {
        data.item_ids[i]: {data.attribute_names[a - 1] for a in ids}
        for i, ids in enumerate(data.item_attributes)
    }
    assert attributes == {
        "a": {"category=toys > blocks", "brand=acme", "colour=red", "size=s"},
        "b": {"category=toys > blocks"},
        "c": {"brand=acme"},
    }
    matrix = data.attribute_matrix()
    assert matrix.shape == (4, 4) and not matrix[0].any()
    # leave-last-out: u1 trains on its first item; u3 (2 items) trains on both and is not evaluated
    assert data.split("train")[0] == [data.sequences[0][:1], data.sequences[1]]
    histories, targets = data.split("test")
    assert histories == [data.sequences[0][:2]] and targets.tolist() == [data.sequences[0][2]]
    assert data.train_counts().tolist() == [0, 0, 0, 1]  # c follows a in u3's training sequence


def test_attribute_file_items_that_never_occur_are_counted(tmp_path):
    (tmp_path / "seq.txt").write_text("1 10 11 12\n2 11 12\n")
    with gzip.open(tmp_path / "attrs.json.gz", "wt") as handle:
        json.dump({"10": [1, 2], "11": [2], "99": [3], "98": [1]}, handle)
    shop = ingest_sequences(tmp_path / "seq.txt", tmp_path / "shop", attributes=tmp_path / "attrs.json.gz")
    report = prepare_sequences(shop, tmp_path / "data")
    assert report["unused_attribute_items"] == 2 and report["items_without_attributes"] == 1
    data = load_sequences(tmp_path / "data")
    assert data.attribute_names == ["attr=2", "attr=1"]  # by frequency
    assert np.array_equal(data.attribute_matrix()[1:], [[1, 2], [1, 0], [0, 0]])


def test_a_shop_where_nobody_acts_twice_is_a_clear_error(tmp_path):
    shop = write_shop(tmp_path / "shop", [("u1", "a", 1, "click"), ("u2", "a", 1, "impression")])
    with pytest.raises(DataError, match="no user has two or more actions"):
        prepare_sequences(shop, tmp_path / "data")
    with pytest.raises(DataError, match="not a next-item dataset"):
        load_sequences(tmp_path)
