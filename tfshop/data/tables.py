"""Canonical shop tables and the shop directory that holds them.

A shop directory is what every source (simulator, adapters) writes and ``prepare`` reads::

    shop.json               source, row counts, notes
    users.parquet           user_id + profile columns (optional)
    items.parquet           item_id, title, description, category, brand, price, attributes
    events/part-*.parquet   one row per behaviour: user_id, item_id, timestamp, behavior, ...
    quarantine/malformed-lines.parquet   source lines that could not be split into fields

Events carry one behaviour each (``impression|click|cart|fav|purchase``). Rows of one impression
share an ``impression_id`` when the source knows it; ``truth_*`` columns hold a simulator's
ground-truth probabilities.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tfshop.errors import DataError

log = logging.getLogger(__name__)

BEHAVIORS = ("impression", "click", "cart", "fav", "purchase")
SPLITS = ("train", "valid", "test")

EVENT_REQUIRED = {"user_id": "string", "item_id": "string", "timestamp": "int64", "behavior": "string"}
EVENT_OPTIONAL = {
    "impression_id": "string",
    "query": "string",
    "query_intent": "string",
    "query_relevance": "float64",
    "position": "int64",
    "rating": "float64",
    "truth_p_click": "float64",
    "truth_p_cvr": "float64",
    "split": "string",  # train / valid / test, for prepare's split: given
}
ITEM_REQUIRED = {"item_id": "string"}
ITEM_OPTIONAL = {
    "title": "string",
    "description": "string",
    "category": "string",
    "brand": "string",
    "price": "float64",
    "attributes": "string",
}
USER_REQUIRED = {"user_id": "string"}
CATEGORY_SEPARATOR = " > "


def check_columns(df: pd.DataFrame, required: dict, optional: dict | None, where: str) -> None:
    """Raises a DataError naming ``where`` for a missing required or an unknown column.

    ``optional=None`` allows any extra column (user profiles may hold anything).
    """
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing required column {missing[0]!r}")
    if optional is not None:
        unknown = [c for c in df.columns if c not in required and c not in optional]
        if unknown:
            known = ", ".join([*required, *optional])
            raise DataError(f"{where}: unknown column {unknown[0]!r} (known: {known})")


def coerce_items(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Items with canonical dtypes; rows without an item id are an error (items are few)."""
    check_columns(df, ITEM_REQUIRED, ITEM_OPTIONAL, where)
    out = pd.DataFrame({"item_id": as_strings(df["item_id"])})
    if (out["item_id"] == "").any():
        raise DataError(f"{where}: {int((out['item_id'] == '').sum())} items have no item_id")
    for column, dtype in ITEM_OPTIONAL.items():
        if dtype == "float64":
            values = df[column] if column in df else pd.Series(float("nan"), index=df.index)
            out[column] = _numbers(values, f"{where}: column {column!r}")
        else:
            values = df[column] if column in df else pd.Series("", index=df.index)
            out[column] = values.fillna("").astype(str)
    return out.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def coerce_users(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Users with string ids; profile columns are kept as strings (categorical) or numbers."""
    check_columns(df, USER_REQUIRED, None, where)
    out = df.copy()
    out["user_id"] = as_strings(df["user_id"])
    if (out["user_id"] == "").any():
        raise DataError(f"{where}: {int((out['user_id'] == '').sum())} users have no user_id")
    for column in out.columns:
        if column != "user_id" and not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].fillna("").astype(str)
    return out.drop_duplicates("user_id", keep="last").reset_index(drop=True)


def as_strings(values: pd.Series) -> pd.Series:
    """Trimmed strings with "" for missing; whole floats (ids read as 12.0) become "12"."""
    if pd.api.types.is_float_dtype(values) or values.dtype == object:
        values = values.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else v)
    return values.astype("string").fillna("").str.strip().astype(object)


def _numbers(values: pd.Series, where: str) -> pd.Series:
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna() & (values.astype(str).str.strip() != "")
    if bad.any():
        example = values[bad].iloc[0]
        raise DataError(f"{where}: {int(bad.sum())} values are not numbers (e.g. {example!r})")
    return converted.astype("float64")


class MalformedLines:
    """Lines with the wrong number of fields, across the files of one ingest.

    Reading fails once more than ``max_share`` of a file's lines are malformed (the file is then
    probably not what the reader expects: another separator, another format).
    """

    def __init__(self, max_share: float = 0.01) -> None:
        if not 0 <= max_share <= 1:
            raise DataError(f"max_bad_share: {max_share} is not a share between 0 and 1")
        self.max_share = max_share
        self.rows: list[dict] = []

    def keep(self, path: Path, line: int | None, text: str, expected: int, actual: int) -> None:
        reason = f"expected {expected} fields, saw {actual}"
        self.rows.append({"file": str(path), "line": line, "text": text, "reason": reason})

    def check(self, path: Path, kept: int) -> None:
        """Raises when more than ``max_share`` of ``path``'s lines (``kept`` good ones and the
        malformed ones) were malformed."""
        bad = [r for r in self.rows if r["file"] == str(path)]
        lines = kept + len(bad)
        if bad and len(bad) > self.max_share * lines:
            first = bad[0]
            raise DataError(
                f"{path}: {len(bad)} of {lines} lines have the wrong number of fields, more than "
                f"max_bad_share {self.max_share:.1%} (line {first['line']}: {first['reason']})"
            )

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["file", "line", "text", "reason"])


class ShopWriter:
    """Writes a shop directory atomically: into a hidden temporary sibling, renamed on close.

    Use as a context manager; on an exception the temporary directory is removed and an
    existing directory at ``path`` is left untouched. Sources read their CSV files with
    ``malformed=writer.malformed``: lines with the wrong number of fields go to the quarantine
    and are counted, up to ``max_bad_share`` of a file.
    """

    def __init__(self, path: str | Path, overwrite: bool = False, max_bad_share: float = 0.01):
        self.path = Path(path)
        self.tmp = claim_output(self.path, overwrite, "shop.json", "shop directory")
        self.counts = {"events": 0, "items": 0, "users": 0, "malformed_lines": 0}
        self.malformed = MalformedLines(max_bad_share)
        self._parts = 0

    def __enter__(self) -> ShopWriter:
        (self.tmp / "events").mkdir(parents=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def write_events(self, df: pd.DataFrame) -> None:
        """Appends one chunk of canonical events as its own Parquet part."""
        check_columns(df, EVENT_REQUIRED, EVENT_OPTIONAL, "events")
        if df.empty:
            return
        pq.write_table(_arrow_table(df), self.tmp / "events" / f"part-{self._parts:05d}.parquet")
        self._parts += 1
        self.counts["events"] += len(df)

    def write_items(self, df: pd.DataFrame) -> None:
        items = coerce_items(df, "items")
        items.to_parquet(self.tmp / "items.parquet", index=False)
        self.counts["items"] = len(items)

    def write_users(self, df: pd.DataFrame) -> None:
        users = coerce_users(df, "users")
        users.to_parquet(self.tmp / "users.parquet", index=False)
        self.counts["users"] = len(users)

    def close(self, source: str, **notes) -> Path:
        """Writes ``shop.json`` and moves the finished directory into place."""
        if self.counts["events"] == 0:
            raise DataError(f"{self.path}: no events were written")
        if self.malformed.rows:
            (self.tmp / "quarantine").mkdir()
            self.malformed.frame().to_parquet(
                self.tmp / "quarantine" / "malformed-lines.parquet", index=False
            )
            self.counts["malformed_lines"] = len(self.malformed.rows)
        manifest = {"source": source, "counts": self.counts, **notes}
        (self.tmp / "shop.json").write_text(json.dumps(manifest, indent=2) + "\n")
        replace_dir(self.tmp, self.path)
        return self.path


def _arrow_table(df: pd.DataFrame) -> pa.Table:
    """Arrow table of ``df``; columns of mixed Python types are stored as strings, unchanged
    otherwise, so that malformed values reach prepare's quarantine instead of failing here."""
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = df.select_dtypes(include="object").columns
        as_text = {c: df[c].map(lambda v: v if v is None or isinstance(v, str) else str(v)) for c in mixed}
        return pa.Table.from_pandas(df.assign(**as_text), preserve_index=False)


def claim_output(path: Path, overwrite: bool, marker: str, what: str) -> Path:
    """The hidden temporary sibling in which to build ``path``, which ``replace_dir`` later moves
    into place. An existing ``path`` is replaced only with ``overwrite``, and only if tfshop wrote
    it (it holds ``marker``); temporaries of the same output that a killed run left are removed."""
    if path.exists():
        if not overwrite:
            raise DataError(f"{path}: already exists (pass --overwrite to replace it)")
        if not (path / marker).is_file():
            raise DataError(f"{path}: not a {what} (no {marker}); not replaced, even with --overwrite")
    for stale in path.parent.glob(f".{path.name}.tmp-*") if path.parent.is_dir() else ():
        log.warning("removing %s, left by an interrupted run", stale)
        shutil.rmtree(stale, ignore_errors=True)
    return path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"


def replace_dir(src: Path, dst: Path) -> None:
    """Moves finished directory ``src`` to ``dst``, replacing an old one only at the last step."""
    old = None
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
        dst.rename(old)
    src.rename(dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def open_shop(path: str | Path) -> dict:
    """Checks that ``path`` is a shop directory and returns its manifest."""
    path = Path(path)
    manifest = path / "shop.json"
    if not manifest.is_file():
        raise DataError(f"{path}: not a shop directory (no shop.json); run simulate or ingest")
    parts = sorted((path / "events").glob("part-*.parquet"))
    if not parts:
        raise DataError(f"{path}/events: no event files (part-*.parquet)")
    return json.loads(manifest.read_text())


def event_row_groups(path: str | Path) -> list[tuple[Path, int]]:
    """The shop's event files' row groups in order: the pieces of the log read independently."""
    parts = sorted((Path(path) / "events").glob("part-*.parquet"))
    return [(part, group) for part in parts for group in range(pq.ParquetFile(part).num_row_groups)]


def iter_row_group(file: Path, group: int, rows: int) -> Iterator[pd.DataFrame]:
    """Row group ``group`` of ``file`` in chunks of at most ``rows`` rows (bounded memory)."""
    for batch in pq.ParquetFile(file).iter_batches(batch_size=rows, row_groups=[group]):
        yield batch.to_pandas()


def read_items(path: str | Path) -> pd.DataFrame | None:
    file = Path(path) / "items.parquet"
    return pd.read_parquet(file) if file.is_file() else None


def read_users(path: str | Path) -> pd.DataFrame | None:
    file = Path(path) / "users.parquet"
    return pd.read_parquet(file) if file.is_file() else None
