"""Next-item data: each user's acted-on items in time order, from a shop directory.

A shop's events other than impressions (clicks, carts, favourites, purchases; every row of a
sequence file) are sorted by user and time; an item acted on several times in a row (a click,
then a cart, then a purchase of the same item) counts once. Rows without a user or an item, or
with a behaviour that is not an action, are counted and left out; so are users with a single
action (no next item to learn from).

Items are numbered 1..n in order of first appearance (0 is padding). Each item's attributes
are tokens ``category=…``, ``brand=…`` and the ``key=value`` pairs of the item table's
``attributes`` column, numbered 1..m by frequency. The split is leave-last-out: each user's last
item is the test target, the one before it the validation target, the rest trains.

Written as a dataset directory (atomically): ``sequences.parquet`` (``user_id``, ``items``: ids),
``items.parquet`` (row i is item i + 1: ``item_id``, ``train_count``, ``attributes``: ids),
``attributes.txt`` (attribute i + 1 on line i) and ``prepare_report.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tfshop.data.tables import BEHAVIORS, claim_output, open_shop, read_items, replace_dir
from tfshop.errors import DataError

log = logging.getLogger(__name__)

ACTIONS = [b for b in BEHAVIORS if b != "impression"]


@dataclass
class SequenceData:
    """A next-item dataset in memory: integer item sequences and the item table."""

    users: list[str]
    sequences: list[list[int]]  # item ids 1..n, oldest first
    item_ids: list[str]  # item_ids[i] is item i + 1
    item_attributes: list[list[int]]  # attribute ids 1..m of item i + 1
    attribute_names: list[str]

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def split(self, part: str) -> tuple[list[list[int]], np.ndarray]:
        """Leave-last-out: ``train`` → (training sequences, no targets); ``valid`` / ``test`` →
        (histories, next items) of the users with at least 3 items."""
        if part == "train":
            return [s[:-2] if len(s) >= 3 else s for s in self.sequences], np.zeros(0, np.int32)
        cut = {"valid": 2, "test": 1}[part]
        evaluated = [s for s in self.sequences if len(s) >= 3]
        return [s[:-cut] for s in evaluated], np.array([s[-cut] for s in evaluated], dtype=np.int32)

    def train_counts(self) -> np.ndarray:
        """How often each id 0..n is a training target (the popularity of cold-start answers)."""
        counts = np.zeros(self.num_items + 1)
        for sequence in self.split("train")[0]:
            np.add.at(counts, sequence[1:], 1)
        return counts

    def attribute_matrix(self) -> np.ndarray:
        """``(n + 1, k)`` attribute ids of each item id, 0-padded (row 0: padding)."""
        width = max((len(a) for a in self.item_attributes), default=0)
        out = np.zeros((self.num_items + 1, max(width, 1)), dtype=np.int32)
        for row, attributes in enumerate(self.item_attributes, 1):
            out[row, : len(attributes)] = attributes
        return out


def prepare_sequences(shop: str | Path, out: str | Path, overwrite: bool = False) -> dict:
    """Writes the next-item dataset of ``shop`` to ``out``; returns its report."""
    shop, out = Path(shop), Path(out)
    manifest = open_shop(shop)
    tmp = claim_output(out, overwrite, "sequences.parquet", "next-item dataset")
    events, report = _actions(shop)
    users, sequences, item_ids, report["repeats_merged"] = _sequences(events)
    short = sum(len(s) < 2 for s in sequences)
    report["users_skipped_single_action"] = short
    keep = [i for i, s in enumerate(sequences) if len(s) >= 2]
    users, sequences = [users[i] for i in keep], [sequences[i] for i in keep]
    if not sequences:
        raise DataError(f"{shop}: no user has two or more actions; nothing to learn the next item from")
    attributes, names, report["items_without_attributes"] = _attributes(read_items(shop), item_ids)
    data = SequenceData(users, sequences, item_ids, attributes, names)
    report.update(
        users=len(users),
        items=len(item_ids),
        actions=sum(map(len, sequences)),
        attributes=len(names),
        evaluated_users=sum(len(s) >= 3 for s in sequences),
        unused_attribute_items=manifest.get("unused_attribute_items", 0),
    )
    _write(data, report, tmp, out)
    log.info("next-item dataset %s: %s", out, report)
    return report


def _actions(shop: Path) -> tuple[pd.DataFrame, dict]:
    table = ds.dataset(shop / "events", format="parquet").to_table(
        columns=["user_id", "item_id", "timestamp", "behavior"]
    )
    events = table.to_pandas()
    events["timestamp"] = pd.to_numeric(events["timestamp"], errors="coerce")
    report = {"events": len(events), "impressions": int((events["behavior"] == "impression").sum())}
    action = events["behavior"].isin(ACTIONS)
    unknown = ~action & (events["behavior"] != "impression")
    missing = events["user_id"].isna() | events["item_id"].isna() | events["timestamp"].isna()
    missing |= events["user_id"].astype(str).str.strip().eq("") | events["item_id"].astype(
        str
    ).str.strip().eq("")
    report["skipped_unknown_behavior"] = int(unknown.sum())
    report["skipped_missing_user_item_or_time"] = int((action & missing).sum())
    for reason in ("skipped_unknown_behavior", "skipped_missing_user_item_or_time"):
        if report[reason]:
            log.warning("next-item data: %d events %s", report[reason], reason.replace("_", " "))
    kept = events[action & ~missing]
    return kept.sort_values(["user_id", "timestamp"], kind="stable"), report


def _sequences(events: pd.DataFrame) -> tuple[list[str], list[list[int]], list[str], int]:
    codes, item_ids = pd.factorize(events["item_id"].astype(str), sort=False)
    users = events["user_id"].astype(str).to_numpy()
    ids = codes.astype(np.int64) + 1
    same_user = np.r_[False, users[1:] == users[:-1]]
    repeat = same_user & np.r_[False, ids[1:] == ids[:-1]]
    users, ids, same_user = users[~repeat], ids[~repeat], same_user[~repeat]
    starts = np.flatnonzero(~same_user)
    sequences = [chunk.tolist() for chunk in np.split(ids, starts[1:])]
    return users[starts].tolist(), sequences, list(item_ids), int(repeat.sum())


def _attributes(items: pd.DataFrame | None, item_ids: list[str]) -> tuple[list[list[str]], list[str], int]:
    tokens: list[list[str]] = [[] for _ in item_ids]
    if items is not None:
        table = items.drop_duplicates("item_id").set_index(items["item_id"].astype(str).str.strip())
        table = table.reindex(item_ids)
        for column in ("category", "brand"):
            if column in table:
                for row, value in enumerate(table[column]):
                    if isinstance(value, str) and value.strip():
                        tokens[row].append(f"{column}={value.strip()}")
        if "attributes" in table:
            for row, value in enumerate(table["attributes"]):
                if isinstance(value, str):
                    tokens[row] += [pair.strip() for pair in value.split(";") if pair.strip()]
    counts = Counter(token for item in tokens for token in item)
    names = [token for token, _ in counts.most_common()]
    number = {token: i for i, token in enumerate(names, 1)}
    ids = [sorted({number[t] for t in item}) for item in tokens]
    return ids, names, sum(not item for item in ids)


def _write(data: SequenceData, report: dict, tmp: Path, out: Path) -> None:
    tmp.mkdir(parents=True)
    try:
        lists = pa.list_(pa.int32())
        pq.write_table(
            pa.table({"user_id": data.users, "items": pa.array(data.sequences, lists)}),
            tmp / "sequences.parquet",
        )
        counts = data.train_counts()[1:].astype(np.int64)
        items = {
            "item_id": data.item_ids,
            "train_count": counts,
            "attributes": pa.array(data.item_attributes, lists),
        }
        pq.write_table(pa.table(items), tmp / "items.parquet")
        (tmp / "attributes.txt").write_text("".join(f"{name}\n" for name in data.attribute_names), "utf-8")
        (tmp / "prepare_report.json").write_text(json.dumps(report, indent=1) + "\n")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_sequences(dataset: str | Path) -> SequenceData:
    """Reads a dataset that :func:`prepare_sequences` wrote."""
    dataset = Path(dataset)
    if not (dataset / "sequences.parquet").is_file():
        raise DataError(f"{dataset}: not a next-item dataset (no sequences.parquet); run prepare")
    sequences = pq.read_table(dataset / "sequences.parquet")
    items = pq.read_table(dataset / "items.parquet")
    names = (dataset / "attributes.txt").read_text("utf-8").splitlines()
    return SequenceData(
        sequences["user_id"].to_pylist(),
        sequences["items"].to_pylist(),
        items["item_id"].to_pylist(),
        items["attributes"].to_pylist(),
        names,
    )
