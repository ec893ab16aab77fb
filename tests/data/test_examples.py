import numpy as np
import pandas as pd

from tfshop.data.examples import assign_split, attach_category_views, attach_history, group_examples


def events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "behavior", "impression_id"])


FUNNEL = events(
    [
        ("u", "a", 100, "impression", "imp1"),
        ("u", "a", 105, "click", "imp1"),
        ("u", "a", 110, "cart", "imp1"),
        ("u", "a", 120, "purchase", "imp1"),
        ("u", "b", 100, "impression", "imp2"),
        ("u", "c", 200, "impression", "imp3"),
        ("u", "d", 300, "impression", "imp4"),
        ("u", "d", 301, "click", "imp4"),
        ("u", "e", 400, "impression", "imp5"),
        ("v", "a", 50, "impression", "imp6"),
    ]
)


def test_funnel_groups_into_labelled_examples():
    ex = group_examples(FUNNEL)
    got = ex[["user_id", "item_id", "timestamp", "click", "cart", "fav", "purchase"]].values.tolist()
    assert got == [
        ["u", "a", 100, 1, 1, 0, 1],
        ["u", "b", 100, 0, 0, 0, 0],
        ["u", "c", 200, 0, 0, 0, 0],
        ["u", "d", 300, 1, 0, 0, 0],
        ["u", "e", 400, 0, 0, 0, 0],
        ["v", "a", 50, 0, 0, 0, 0],
    ]


def test_history_holds_only_earlier_actions():
    ex = attach_history(
        group_examples(FUNNEL), FUNNEL, length=5, item_category=pd.Series({"a": "A", "d": "D"})
    )
    history = dict(zip(ex["item_id"] + "@" + ex["user_id"], ex["hist_item_ids"]))
    # The click/cart/purchase on 'a' happen after 100, so the examples shown at 100 see nothing,
    # and the three actions on one impression count once.
    assert history == {"a@u": [], "b@u": [], "c@u": ["a"], "d@u": ["a"], "e@u": ["a", "d"], "a@v": []}
    assert ex.loc[ex["item_id"] == "e", "hist_categories"].item() == ["A", "D"]


def test_history_keeps_the_most_recent_items():
    clicks = events([("u", f"i{t}", t, "click", "") for t in range(10)])
    ex = attach_history(group_examples(clicks), clicks, length=3)
    assert ex["hist_item_ids"].iloc[-1] == ["i6", "i7", "i8"]
    # Without impression ids, one user, item and day form one example; same-time actions are excluded.
    assert ex["hist_item_ids"].iloc[0] == []


def test_examples_without_impression_ids_group_by_user_item_day():
    log = events(
        [
            ("u", "a", 10, "click", ""),
            ("u", "a", 20, "purchase", ""),
            ("u", "a", 86_400 + 5, "click", ""),
        ]
    )
    ex = group_examples(log)
    assert ex[["timestamp", "click", "purchase"]].values.tolist() == [[10, 1, 1], [86_405, 1, 0]]


def test_time_split_and_leave_last_out():
    ex = pd.DataFrame({"user_id": ["u"] * 4 + ["v"] * 2, "timestamp": [1, 5, 8, 9, 2, 9]})
    assert assign_split(ex, "time", valid_from=5, test_from=9).tolist() == [
        "train",
        "valid",
        "valid",
        "test",
        "train",
        "test",
    ]
    assert assign_split(ex, "leave_last_out").tolist() == [
        "train",
        "train",
        "valid",
        "test",
        "train",
        "train",
    ]


SHOWN = pd.DataFrame(
    {
        "user_id": ["u", "u", "u", "u", "u", "v"],
        "top_category": ["shoes", "shoes", "bags", "shoes", "bags", "shoes"],
        "timestamp": [10, 10, 20, 30, 30, 10],
    }
)


def test_category_view_share_counts_only_earlier_examples():
    share = attach_category_views(SHOWN, "top_category")["category_view_share"].to_numpy()
    # at 10 nothing was shown before (missing); at 20 two shoes; at 30 two shoes and one bag
    np.testing.assert_allclose(share, [np.nan, np.nan, 0.0, 2 / 3, 1 / 3, np.nan])
    assert list(SHOWN.columns) == ["user_id", "top_category", "timestamp"]  # input left alone


def test_category_view_share_counts_only_the_counted_examples():
    counted = pd.Series([True, False, True, True, True, True])
    share = attach_category_views(SHOWN, "top_category", counted)["category_view_share"].to_numpy()
    np.testing.assert_allclose(share, [np.nan, np.nan, 0.0, 1 / 2, 1 / 2, np.nan])
