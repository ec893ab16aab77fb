"""Any CSV or Parquet log, described by a YAML mapping of columns.

Example mapping (paths are relative to the mapping file)::

    events:
      path: clicks.csv
      columns: {user_id: uid, item_id: sku, timestamp: ts, behavior: action}
      behaviors: {view: click, basket: cart, order: purchase}
      timestamp_format: unix      # or iso (any format pandas parses)
    items:
      path: products.parquet
      columns: {item_id: sku, title: name, price: price}
    users:
      path: customers.csv
      columns: {user_id: uid, city_tier: tier}

Keys under ``columns`` are canonical names (see ``tfshop.data.tables``), values are source
columns. ``behavior`` may be omitted with ``behavior_value`` giving one value for every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow.parquet as pq

from tfshop.config import from_dict, load_yaml
from tfshop.data.sources.files import existing_file, read_csv_chunks
from tfshop.data.tables import (
    EVENT_OPTIONAL,
    EVENT_REQUIRED,
    ITEM_OPTIONAL,
    ITEM_REQUIRED,
    ShopWriter,
)
from tfshop.errors import ConfigError, DataError


@dataclass
class TableMapping:
    path: str
    columns: dict[str, str] = field(default_factory=dict)
    behaviors: dict[str, str] = field(default_factory=dict)
    behavior_value: str = ""
    timestamp_format: Literal["unix", "unix_ms", "iso"] = "unix"


@dataclass
class SourceMapping:
    events: TableMapping
    items: TableMapping | None = None
    users: TableMapping | None = None


def ingest_table(
    mapping: str | Path,
    out: str | Path,
    overwrite: bool = False,
    chunk_rows: int = 1_000_000,
    max_bad_share: float = 0.01,
) -> Path:
    """Converts the tables a YAML mapping describes into a shop directory."""
    mapping = Path(mapping)
    spec = from_dict(SourceMapping, load_yaml(mapping), str(mapping))
    base = mapping.parent
    _check_targets(
        spec.events, {**EVENT_REQUIRED, **EVENT_OPTIONAL}, f"{mapping}: events", needs_behavior=True
    )
    if spec.items:
        _check_targets(spec.items, {**ITEM_REQUIRED, **ITEM_OPTIONAL}, f"{mapping}: items")
    with ShopWriter(out, overwrite, max_bad_share) as writer:
        for chunk in _chunks(base / spec.events.path, chunk_rows, writer):
            writer.write_events(_map_events(chunk, spec.events, base / spec.events.path))
        if spec.items:
            path = base / spec.items.path
            writer.write_items(_select(pd.concat(_chunks(path, chunk_rows, writer)), spec.items, path))
        if spec.users:
            path = base / spec.users.path
            writer.write_users(_select(pd.concat(_chunks(path, chunk_rows, writer)), spec.users, path))
        return writer.close("table", mapping=str(mapping))


def _check_targets(table: TableMapping, known: dict, where: str, needs_behavior: bool = False) -> None:
    for target in table.columns:
        if target not in known:
            raise ConfigError(
                f"{where}.columns: unknown canonical column {target!r} (known: {', '.join(known)})"
            )
    if needs_behavior and "behavior" not in table.columns and not table.behavior_value:
        raise ConfigError(f"{where}: map a 'behavior' column or set behavior_value")


def _chunks(path: Path, chunk_rows: int, writer: ShopWriter):
    path = existing_file(path)
    if path.suffix == ".parquet":
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    else:
        yield from read_csv_chunks(path, chunk_rows, malformed=writer.malformed)


def _select(df: pd.DataFrame, table: TableMapping, path: Path) -> pd.DataFrame:
    missing = [src for src in table.columns.values() if src not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column {missing[0]!r} named in the mapping")
    return df[list(table.columns.values())].rename(columns={v: k for k, v in table.columns.items()})


def _map_events(df: pd.DataFrame, table: TableMapping, path: Path) -> pd.DataFrame:
    events = _select(df, table, path)
    if "behavior" not in events:
        events["behavior"] = table.behavior_value
    elif table.behaviors:
        raw = events["behavior"].astype(str).str.strip()
        events["behavior"] = raw.map(table.behaviors).fillna(raw)
    if table.timestamp_format == "iso":
        parsed = pd.to_datetime(events["timestamp"], errors="coerce", utc=True)
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        events["timestamp"] = seconds.astype("Int64").astype("string").fillna(events["timestamp"].astype(str))
    elif table.timestamp_format == "unix_ms":
        ms = pd.to_numeric(events["timestamp"], errors="coerce")
        events["timestamp"] = (
            (ms // 1000).astype("Int64").astype("string").fillna(events["timestamp"].astype(str))
        )
    return events
