"""Adapters from real log formats to a canonical shop directory (see ``tfshop.data.tables``).

Adapters rename and map values only; type coercion and the quarantine of malformed rows happen
once, in ``prepare``, so no row is dropped here.
"""

from tfshop.data.sources.movielens import ingest_movielens
from tfshop.data.sources.sequences import ingest_sequences
from tfshop.data.sources.table import ingest_table
from tfshop.data.sources.taobao import ingest_taobao

ADAPTERS = {
    "taobao": ingest_taobao,
    "sequences": ingest_sequences,
    "movielens": ingest_movielens,
    "table": ingest_table,
}

__all__ = ["ADAPTERS", "ingest_movielens", "ingest_sequences", "ingest_table", "ingest_taobao"]
