import pandas as pd
import pytest

from tfshop.data.tables import ShopWriter, coerce_items, event_row_groups, iter_row_group, open_shop
from tfshop.errors import DataError

EVENTS = pd.DataFrame(
    {"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "timestamp": [10, 20], "behavior": ["click", "click"]}
)


def test_writer_is_atomic(tmp_path):
    target = tmp_path / "shop"
    with pytest.raises(RuntimeError), ShopWriter(target) as writer:
        writer.write_events(EVENTS)
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_round_trip_and_overwrite(tmp_path):
    target = tmp_path / "shop"
    with ShopWriter(target) as writer:
        writer.write_events(EVENTS)
        writer.write_events(EVENTS)
        writer.close("test")
    assert open_shop(target)["counts"]["events"] == 4
    chunks = [c for file, group in event_row_groups(target) for c in iter_row_group(file, group, rows=1)]
    assert [len(c) for c in chunks] == [1, 1, 1, 1]
    with pytest.raises(DataError, match="already exists"):
        ShopWriter(target)
    with ShopWriter(target, overwrite=True) as writer:
        writer.write_events(EVENTS.head(1))
        writer.close("test")
    assert open_shop(target)["counts"]["events"] == 1


def test_writer_rejects_bad_tables(tmp_path):
    with ShopWriter(tmp_path / "shop") as writer:
        with pytest.raises(DataError, match="events: unknown column 'colour'"):
            writer.write_events(EVENTS.assign(colour="red"))
        with pytest.raises(DataError, match="events: missing required column 'behavior'"):
            writer.write_events(EVENTS.drop(columns="behavior"))
        with pytest.raises(DataError, match="no events were written"):
            writer.close("test")


def test_open_shop_errors(tmp_path):
    with pytest.raises(DataError, match="not a shop directory"):
        open_shop(tmp_path)


def test_items_are_coerced():
    items = coerce_items(pd.DataFrame({"item_id": [1.0, 2.0, 2.0], "price": ["3.5", "", "4"]}), "items")
    assert items["item_id"].tolist() == ["1", "2"]
    assert items["price"].tolist()[0] == 3.5
    assert items["title"].tolist() == ["", ""]
    with pytest.raises(DataError, match="column 'price': 1 values are not numbers"):
        coerce_items(pd.DataFrame({"item_id": ["a"], "price": ["cheap"]}), "items")
