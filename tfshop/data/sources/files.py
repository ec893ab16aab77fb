"""Reading source files with errors that name the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from tfshop.errors import DataError


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def read_csv_chunks(path: str | Path, chunk_rows: int = 1_000_000, **kwargs) -> Iterator[pd.DataFrame]:
    """Streams a CSV (optionally gzipped) as string columns, in chunks of ``chunk_rows``."""
    path = existing_file(path)
    try:
        yield from pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows, **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot parse as CSV: {str(err).splitlines()[0]}") from None


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """A whole CSV or Parquet file as a DataFrame (CSV columns as strings)."""
    path = existing_file(path)
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for bad files
            raise DataError(f"{path}: cannot read as Parquet: {err}") from None
    return pd.concat(list(read_csv_chunks(path, **kwargs)), ignore_index=True)
