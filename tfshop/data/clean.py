"""Row-level validation of events: coerce types, and set aside malformed or anomalous rows.

Nothing is dropped silently: every rejected row is returned with a ``reason`` so prepare can
write it to the quarantine and count it in the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfshop.data.tables import (
    BEHAVIORS,
    EVENT_OPTIONAL,
    EVENT_REQUIRED,
    SPLITS,
    as_strings,
    check_columns,
)

POSITIVE_BEHAVIORS = ("click", "cart", "fav", "purchase")
MAX_ABS_VALUE = 1e12  # numbers beyond it (and ±inf) are input errors, not shop data


def out_of_range(number: pd.Series, max_abs: float) -> pd.Series:
    """True where a parsed number is ±inf or beyond ±``max_abs`` (NaN, a missing value, is not)."""
    return number.notna() & ~(number.abs() <= max_abs)


def out_of_range_reason(column: str, max_abs: float) -> str:
    return f"{column} not finite or beyond ±{max_abs:g}"


def clear_out_of_range(table: pd.DataFrame, max_abs: float, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Sets out-of-range values of ``table``'s numeric columns to missing (NaN), in place, and
    returns how many per column: for item and user tables, whose rows cannot be set aside."""
    cleared = {}
    for column in table.columns:
        if column in skip or not pd.api.types.is_numeric_dtype(table[column]):
            continue
        values = table[column].astype("float64")
        bad = out_of_range(values, max_abs)
        if bad.any():
            table[column] = values.mask(bad)
            cleared[column] = int(bad.sum())
    return cleared


def split_valid_events(
    df: pd.DataFrame, min_timestamp: int, max_timestamp: int, where: str, max_abs: float = MAX_ABS_VALUE
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns (canonical valid events, rejected raw rows with a ``reason`` column); a number
    beyond ±``max_abs`` or not finite rejects its row."""
    check_columns(df, EVENT_REQUIRED, EVENT_OPTIONAL, where)
    raw = df.reset_index(drop=True)
    out = pd.DataFrame(index=raw.index)
    reason = pd.Series("", index=raw.index, dtype=object)

    def reject(mask: pd.Series, why: str) -> None:
        reason[mask & (reason == "")] = why

    for column in ("user_id", "item_id"):
        values = as_strings(raw[column])
        reject(values == "", f"missing {column}")
        out[column] = values
    timestamp = pd.to_numeric(raw["timestamp"], errors="coerce")
    reject(timestamp.isna() | (timestamp != timestamp.round()), "unparseable timestamp")
    reject((timestamp < min_timestamp) | (timestamp > max_timestamp), "timestamp out of range")
    out["timestamp"] = timestamp.fillna(0).astype("int64")
    behavior = as_strings(raw["behavior"]).str.lower()
    reject(~behavior.isin(BEHAVIORS), "unknown behavior")
    out["behavior"] = behavior
    for column, dtype in EVENT_OPTIONAL.items():
        if column not in raw:
            continue
        if dtype == "string":
            out[column] = as_strings(raw[column])
        else:
            blank = _blank(raw[column])
            number = pd.to_numeric(raw[column].where(~blank), errors="coerce")
            reject(number.isna() & ~blank, f"unparseable {column}")
            reject(out_of_range(number, max_abs), out_of_range_reason(column, max_abs))
            out[column] = number.astype("float64")
    if "split" in out:
        reject(~out["split"].isin(SPLITS), "split not train, valid or test")
    if "rating" in out:
        reject(out["rating"].notna() & ~out["rating"].between(0, 10), "rating out of range")
    bad = reason != ""
    rejected = raw[bad].astype(str).assign(reason=reason[bad])
    return out[~bad].reset_index(drop=True), rejected.reset_index(drop=True)


def _blank(values: pd.Series) -> pd.Series:
    """Missing values: NaN, and in a text column also empty or "nan" (a numeric column read as
    numbers has no text to look at, so it is not turned into strings)."""
    if pd.api.types.is_numeric_dtype(values):
        return values.isna()
    return values.isna() | values.astype(str).str.strip().isin(["", "nan"])


def find_bots(events: pd.DataFrame, max_actions_per_hour: int) -> pd.Series:
    """Users with more than the limit of non-impression actions within any 3,600 seconds,
    with their peak count (a sliding window, so bursts across a clock hour are caught)."""
    actions = events.loc[events["behavior"] != "impression", ["user_id", "timestamp"]]
    if actions.empty:
        return pd.Series(dtype="int64")
    codes, users = pd.factorize(actions["user_id"])
    key = np.sort(codes.astype("int64") * np.int64(2**33) + actions["timestamp"].to_numpy())
    in_window = np.searchsorted(key, key + 3600, side="left") - np.arange(len(key))
    peak = pd.Series(in_window).groupby(key // np.int64(2**33)).max()
    peak.index = users[peak.index]
    return peak[peak > max_actions_per_hour]


def drop_duplicates(events: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Removes exact duplicate events (the same row logged twice); returns (events, removed)."""
    keep = ~events.duplicated()
    return events[keep].reset_index(drop=True), int((~keep).sum())
