"""Per-user item sequences as published with SASRec, S3-Rec and DynamicRec.

Three layouts, all in chronological order:

* S3-Rec: one user a line, ``user item_1 item_2 ...``;
* SASRec: one interaction a line, ``user item``, sorted by user then time;
* DynamicRec (``.csv`` or ``.csv.gz`` files): one session a line, ``item_1,item_2,...``; the
  line number is the user.

There are no timestamps, so each interaction's ``timestamp`` is its rank in the user's sequence
(1, 2, ...): good for ordering and leave-last-out splits, not for time-based splits. An optional
S3-Rec ``item2attributes.json`` gives items ``attr=<id>`` attributes.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pandas as pd

from tfshop.data.sources.files import existing_file
from tfshop.data.tables import ShopWriter
from tfshop.errors import DataError

log = logging.getLogger(__name__)


def ingest_sequences(
    source: str | Path,
    out: str | Path,
    overwrite: bool = False,
    attributes: str | Path | None = None,
    chunk_users: int = 100_000,
) -> Path:
    """Converts a sequence file (``.txt`` or ``.txt.gz``) into a shop directory of clicks."""
    source = existing_file(source)
    with ShopWriter(out, overwrite=overwrite) as writer:
        rows: dict[str, list[str]] = {}
        written: dict[str, int] = {}  # interactions already written per user, to continue ranks
        for user, items in _user_items(source):
            if user not in rows and len(rows) >= chunk_users:
                writer.write_events(_events(rows, written))
                rows = {}
            rows.setdefault(user, []).extend(items)
        writer.write_events(_events(rows, written))
        items, unused = _items(source, attributes)
        writer.write_items(items)
        return writer.close("sequences", input=str(source), timestamps="rank", unused_attribute_items=unused)


def _user_items(source: Path):
    """``(user, [items])`` for each non-empty line; a lone token is an error but in a session."""
    sessions = source.name.endswith((".csv", ".csv.gz"))
    for number, line in enumerate(_lines(source), 1):
        if sessions:
            items = [token.strip() for token in line.split(",")] if line.strip() else []
            if "" in items:
                raise DataError(f"{source}:{number}: empty item id in {line.strip()!r}")
            if items:
                yield str(number), items
            continue
        tokens = line.split()
        if len(tokens) == 1:
            raise DataError(f"{source}:{number}: expected 'user item ...', got {line.strip()!r}")
        if tokens:
            yield tokens[0], tokens[1:]


def _lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        try:
            yield from handle
        except UnicodeDecodeError as err:
            raise DataError(
                f"{path}: not UTF-8 text (byte {err.start} of a block): is this a sequence file?"
            ) from None


def _events(rows: dict[str, list[str]], written: dict[str, int]) -> pd.DataFrame:
    users = [u for u, items in rows.items() for _ in items]
    items = [i for seq in rows.values() for i in seq]
    ranks = [
        r for u, seq in rows.items() for r in range(written.get(u, 0) + 1, written.get(u, 0) + len(seq) + 1)
    ]
    for user, seq in rows.items():
        written[user] = written.get(user, 0) + len(seq)
    return pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "timestamp": ranks,
            "behavior": "click",
            "impression_id": [f"{u}-{r}" for u, r in zip(users, ranks)],  # one example per interaction
        }
    )


def _items(source: Path, attributes: str | Path | None) -> tuple[pd.DataFrame, int]:
    """The item table, and how many items of the attribute file never occur (left out)."""
    ids = sorted({item for _, items in _user_items(source) for item in items}, key=_numeric_first)
    items = pd.DataFrame({"item_id": ids})
    unused = 0
    if attributes is not None:
        path = existing_file(attributes)
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                mapping = json.load(handle)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: invalid JSON: {err}") from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text: is this an item2attributes file?") from None
        items["attributes"] = items["item_id"].map(
            lambda i: ";".join(f"attr={a}" for a in mapping.get(i, []))
        )
        unused = len(set(mapping) - set(ids))
        if unused:
            log.warning("%s: %d items with attributes never occur in %s; left out", path, unused, source)
    return items, unused


def _numeric_first(token: str):
    return (0, int(token), "") if token.isdigit() else (1, 0, token)


def read_sequences(source: str | Path) -> dict[str, list[str]]:
    """Every user's items in order, from any layout (for in-memory sequence models)."""
    source = existing_file(source)
    sequences: dict[str, list[str]] = {}
    for user, items in _user_items(source):
        sequences.setdefault(user, []).extend(items)
    if not sequences:
        raise DataError(f"{source}: no sequences")
    return sequences
