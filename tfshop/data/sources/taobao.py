"""Taobao UserBehavior CSV (``user,item,category,behavior,timestamp``, no header).

``pv`` (a product page view) maps to ``click``, ``buy`` to ``purchase``; ``cart`` and ``fav``
keep their names. Other values pass through so that prepare quarantines them visibly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tfshop.data.sources.files import read_csv_chunks
from tfshop.data.tables import ShopWriter

COLUMNS = ["user_id", "item_id", "category", "behavior", "timestamp"]
BEHAVIOR_MAP = {"pv": "click", "cart": "cart", "fav": "fav", "buy": "purchase"}


def ingest_taobao(
    source: str | Path,
    out: str | Path,
    overwrite: bool = False,
    chunk_rows: int = 1_000_000,
    max_bad_share: float = 0.01,
) -> Path:
    """Converts a UserBehavior CSV into a shop directory; items get their category id."""
    categories: dict[str, str] = {}
    with ShopWriter(out, overwrite, max_bad_share) as writer:
        for chunk in read_csv_chunks(source, chunk_rows, names=COLUMNS, malformed=writer.malformed):
            chunk["behavior"] = chunk["behavior"].str.strip().map(BEHAVIOR_MAP).fillna(chunk["behavior"])
            categories.update(zip(chunk["item_id"], chunk["category"]))
            writer.write_events(chunk.drop(columns="category"))
        items = pd.DataFrame({"item_id": list(categories), "category": list(categories.values())})
        writer.write_items(items[items["item_id"].str.strip() != ""])
        return writer.close("taobao", input=str(source))
