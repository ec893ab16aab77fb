"""The item catalogue of a dataset: ``items.parquet``, one row per item of the item vocabulary
and per further item of the shop's item table (items never shown in training: retrieval can
still find them by their fields, title, category...).

Columns: the item id (named as the schema's ``item_id``-role feature), every schema feature
whose value belongs to the item (category, brand, price, title, ...; lists for sequence
features) and ``train_impressions``, how often the item was shown in the training split.
Retrieval needs it: the model's item tower runs over the whole catalogue when it is evaluated
and exported, and the impression counts are the in-batch candidates' sampling probabilities.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from tfshop.data.schema import Schema

FILE = "items.parquet"


def write_catalogue(schema: Schema, folder: Path, items: pd.DataFrame | None, impressions: Counter) -> bool:
    """Writes ``folder/items.parquet``; False when there is no item table."""
    item = schema.with_role("item_id")
    if items is None or item is None or not item.vocab:
        return False
    ids = (folder / item.vocab).read_text(encoding="utf-8").splitlines()
    ids += sorted(set(items.index) - set(ids))
    columns = [f.name for f in schema.features if f.name in items.columns]
    table = items[columns].reindex(ids)
    for f in schema.features:
        if f.name in columns and f.kind == "sequence":
            table[f.name] = table[f.name].map(lambda v: list(v) if isinstance(v, (list, np.ndarray)) else [])
        elif f.name in columns:
            table[f.name] = table[f.name].fillna(f.default)
    table.insert(0, item.name, ids)
    table["train_impressions"] = [impressions.get(i, 0) for i in ids]
    table.reset_index(drop=True).to_parquet(folder / FILE, index=False)
    return True


def read_catalogue(data_dir: str | Path) -> pd.DataFrame | None:
    path = Path(data_dir) / FILE
    return pd.read_parquet(path) if path.exists() else None


def catalogue_inputs(catalogue: pd.DataFrame, schema: Schema, names: list[str]) -> dict[str, np.ndarray]:
    """The catalogue's columns ``names`` as raw model inputs (sequences padded to ``max_len``)."""
    features = {f.name: f for f in schema.features}
    out = {}
    for name in names:
        f = features[name]
        if f.kind == "sequence":
            rows = [list(v)[: f.max_len] for v in catalogue[name]]
            out[name] = np.array([r + [""] * (f.max_len - len(r)) for r in rows], dtype=object)
        elif f.dtype == "string":
            out[name] = catalogue[name].astype(str).to_numpy(dtype=object)
        else:
            out[name] = catalogue[name].to_numpy(dtype=np.float32 if f.dtype == "float32" else np.int64)
    return out
