"""From events to training examples: one row per impression, its funnel labels and its history.

An example is one shown item: the rows sharing an ``impression_id`` (or, where a source has no
impressions, the rows of one user and item on one day). Its labels say which behaviours followed
(any action counts as a click, since a cart or purchase implies one). Its history is the user's
last items acted on *strictly before* the example's own time, so nothing from its future leaks in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from tfshop.data.clean import POSITIVE_BEHAVIORS

FUNNEL_LABELS = ("click", "cart", "fav", "purchase")
_USER_SHIFT = np.int64(2**33)  # timestamps stay below 2**33 (year 2242)


def group_examples(events: pd.DataFrame) -> pd.DataFrame:
    """One row per impression group with labels, first query/position, max rating, truth."""
    ev = events.copy()
    ev["example_key"] = _example_keys(ev)
    acted = ev["behavior"].isin(POSITIVE_BEHAVIORS)
    ev["click"] = acted
    for name in FUNNEL_LABELS[1:]:
        ev[name] = ev["behavior"] == name
    aggregations = {
        "item_id": ("item_id", "first"),
        "timestamp": ("timestamp", "min"),
        **{name: (name, "max") for name in FUNNEL_LABELS},
    }
    for column, how in (
        ("query", "first"),
        ("query_intent", "first"),
        ("query_relevance", "first"),
        ("position", "min"),
        ("rating", "max"),
        ("truth_p_click", "first"),
        ("truth_p_cvr", "first"),
        ("split", "first"),
    ):
        if column in ev:
            aggregations[column] = (column, how)
    examples = ev.groupby(["user_id", "example_key"], sort=False).agg(**aggregations)
    examples = examples.reset_index().sort_values(["user_id", "timestamp", "example_key"], kind="stable")
    for name in FUNNEL_LABELS:
        examples[name] = examples[name].astype("int64")
    return examples.reset_index(drop=True)


def _example_keys(ev: pd.DataFrame) -> pd.Series:
    day_key = "~" + ev["item_id"] + "|" + (ev["timestamp"] // 86_400).astype(str)
    if "impression_id" not in ev:
        return day_key
    return ev["impression_id"].where(ev["impression_id"] != "", day_key)


def attach_history(
    examples: pd.DataFrame, events: pd.DataFrame, length: int, item_category: pd.Series | None = None
) -> pd.DataFrame:
    """Adds ``hist_item_ids``: the user's last ``length`` acted-on items before each example.

    Several actions on one impression (click, cart, purchase) count once, at the first action.
    With ``item_category`` (category by item id) it also adds their ``hist_categories``.
    """
    acted = events[events["behavior"].isin(POSITIVE_BEHAVIORS)].assign(example_key=lambda d: _example_keys(d))
    acted = acted.sort_values(["user_id", "timestamp"], kind="stable")
    acted = acted.drop_duplicates(["user_id", "example_key"])
    codes = pd.Index(pd.unique(pd.concat([examples["user_id"], acted["user_id"]])))
    acted_key = codes.get_indexer(acted["user_id"]) * _USER_SHIFT + acted["timestamp"].to_numpy()
    order = np.argsort(acted_key, kind="stable")
    acted_key = acted_key[order]
    acted_items = pa.array(acted["item_id"].to_numpy(dtype=object)[order], type=pa.string())
    user_code = codes.get_indexer(examples["user_id"]) * _USER_SHIFT
    end = np.searchsorted(acted_key, user_code + examples["timestamp"].to_numpy(), side="left")
    start = np.maximum(np.searchsorted(acted_key, user_code, side="left"), end - length)
    examples = examples.copy()
    examples["hist_item_ids"] = _windows(acted_items, start, end, examples.index)
    if item_category is not None:
        categories = pd.Series(acted_items.to_numpy(zero_copy_only=False)).map(item_category).fillna("")
        categories = pa.array(categories, type=pa.string())
        examples["hist_categories"] = _windows(categories, start, end, examples.index)
    return examples


def _windows(values: pa.Array, start: np.ndarray, end: np.ndarray, index: pd.Index) -> pd.Series:
    """``values[start[i]:end[i]]`` for each row i, as an Arrow-backed column of lists."""
    lengths = end - start
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.arange(offsets[-1]) - np.repeat(offsets[:-1] - start, lengths)
    lists = pa.ListArray.from_arrays(offsets.astype(np.int32), values.take(positions))
    return pd.Series(pd.arrays.ArrowExtensionArray(lists), index=index)


def attach_category_views(
    examples: pd.DataFrame, category: str, counted: pd.Series | None = None
) -> pd.DataFrame:
    """Adds ``category_view_share``: of the user's examples *strictly before* each example (the
    items they were shown), the share in the example's own ``category``; NaN with none before.

    It tells how much of a user's browsing goes to the candidate's category, which one session's
    history of clicks rarely shows. ``counted`` (bool per example) limits what counts as seen
    (training examples only, when the split does not follow time).
    """
    seen = np.ones(len(examples)) if counted is None else counted.to_numpy(dtype="float64")
    rows = examples[["user_id", category, "timestamp"]].assign(seen=seen)
    in_category = _seen_before(rows, ["user_id", category])
    overall = _seen_before(rows, ["user_id"])
    examples = examples.copy()
    examples["category_view_share"] = np.where(overall > 0, in_category / np.maximum(overall, 1), np.nan)
    return examples


def _seen_before(rows: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """For each row, the sum of ``seen`` over rows of the same ``keys`` with an earlier timestamp."""
    at = rows.groupby([*keys, "timestamp"], sort=True)["seen"].sum()
    before = at.groupby(level=list(range(len(keys))), sort=False).cumsum() - at
    return before.reindex(pd.MultiIndex.from_frame(rows[[*keys, "timestamp"]])).to_numpy()


def assign_split(examples: pd.DataFrame, how: str, valid_from: int = 0, test_from: int = 0) -> pd.Series:
    """``train``/``valid``/``test`` for each example.

    ``time``: by the example's timestamp against the two cut-offs. ``leave_last_out``: each
    user's last example is test and the one before it valid (users with fewer than 3 examples
    stay in train), as in the SASRec / S3-Rec protocol. ``given``: the events' own ``split``.
    """
    if how == "given":
        return examples["split"]
    if how == "time":
        t = examples["timestamp"]
        return pd.Series(
            np.where(t >= test_from, "test", np.where(t >= valid_from, "valid", "train")),
            index=examples.index,
        )
    from_end = examples.groupby("user_id", sort=False).cumcount(ascending=False)
    size = examples.groupby("user_id", sort=False)["user_id"].transform("size")
    split = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    return pd.Series(np.where(size < 3, "train", split), index=examples.index)
