import json

import numpy as np
import pandas as pd
import pytest

from tfshop.config import from_dict
from tfshop.data.simulate import SimulateConfig, simulate, words
from tfshop.errors import ConfigError


@pytest.fixture(scope="module")
def events(small_shop):
    return pd.read_parquet(small_shop / "events")


def test_same_seed_same_shop_other_seed_other_shop(tmp_path):
    config = SimulateConfig(events=5_000, items=200, seed=11, chunk_users=50)
    a = simulate(config, tmp_path / "a")
    b = simulate(config, tmp_path / "b")
    c = simulate(SimulateConfig(events=5_000, items=200, seed=12, chunk_users=50), tmp_path / "c")
    for table in ("events", "items.parquet", "users.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(a / table), pd.read_parquet(b / table))
    assert not pd.read_parquet(a / "events").equals(pd.read_parquet(c / "events"))
    assert len(list((a / "events").glob("part-*.parquet"))) > 1  # written in chunks


def test_sizes_and_sparse_funnel(small_shop, events):
    manifest = json.loads((small_shop / "shop.json").read_text())
    assert 50_000 < len(events) < 70_000
    humans = events[~events["user_id"].isin(manifest["bot_user_ids"])]
    counts = humans["behavior"].value_counts()
    assert 0.025 < counts["click"] / counts["impression"] < 0.07
    assert 0.005 < counts["purchase"] / counts["click"] < 0.08
    assert set(events["behavior"]) == {"impression", "click", "cart", "fav", "purchase"}


def test_ground_truth_is_calibrated(events):
    """Observed click rates follow the recorded probabilities, decile by decile."""
    shown = events[(events["behavior"] == "impression") & events["truth_p_click"].notna()]
    clicked = set(events.loc[events["behavior"] == "click", "impression_id"])
    y = shown["impression_id"].isin(clicked).to_numpy()
    p = shown["truth_p_click"].to_numpy()
    deciles = np.quantile(p, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(deciles, p, side="right") - 1, 0, 9)
    observed = np.array([y[bins == b].mean() for b in range(10)])
    expected = np.array([p[bins == b].mean() for b in range(10)])
    assert np.all(np.abs(observed - expected) < 0.02 + 0.25 * expected)
    assert observed[-1] > 5 * observed[0]  # the truth separates, not just averages


def test_position_and_query_move_clicks(events):
    shown = events[events["behavior"] == "impression"]
    by_position = shown.groupby("position")["truth_p_click"].mean()
    assert by_position.loc[1] > by_position.loc[10]
    intents = shown.loc[shown["query"] != "", "query_intent"]
    assert set(intents) == set(words.INTENTS)
    deal = shown.loc[shown["query_intent"] == "deal", "query"]
    assert deal.str.contains("cheap|sale|discount|under").all()


def test_text_carries_the_item_fields(small_shop):
    items = pd.read_parquet(small_shop / "items.parquet")
    for _, item in items.head(50).iterrows():
        leaf = item["category"].split(" > ")[1]
        assert item["title"].lower().startswith(item["brand"])
        assert item["title"].endswith(leaf)
        assert leaf in item["description"]
        colour = dict(kv.split("=") for kv in item["attributes"].split(";"))["colour"]
        assert colour in item["title"]


def test_bots_are_recorded(small_shop, events):
    bots = json.loads((small_shop / "shop.json").read_text())["bot_user_ids"]
    assert bots, "the small shop should contain scrapers for prepare to catch"
    per_bot = events[events["user_id"].isin(bots) & (events["behavior"] == "click")].groupby("user_id").size()
    assert (per_bot >= SimulateConfig().bot_clicks).all()


def test_bad_config():
    with pytest.raises(ConfigError, match="click_rate: must be in"):
        from_dict(SimulateConfig, {"click_rate": 1.5})
    with pytest.raises(ConfigError, match="unknown key 'evnets'"):
        from_dict(SimulateConfig, {"evnets": 10})
