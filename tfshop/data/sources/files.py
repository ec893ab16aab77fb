"""Reading source files with errors that name the file.

CSV is read with Arrow's streaming reader: every column as text, a quoted field may span lines,
and a line with the wrong number of fields is either an error naming it or, given a
``MalformedLines``, set aside with its number and text so the rest of the file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from tfshop.data.tables import MalformedLines
from tfshop.errors import DataError

BLOCK_BYTES = 16 << 20


def existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    return path


def read_csv_chunks(
    path: str | Path,
    chunk_rows: int = 1_000_000,
    names: list[str] | None = None,
    sep: str = ",",
    encoding: str = "utf8",
    malformed: MalformedLines | None = None,
) -> Iterator[pd.DataFrame]:
    """Streams a CSV (optionally gzipped) as string columns, in chunks of about ``chunk_rows``.

    ``names`` reads a file without a header. Without ``malformed``, a line with the wrong number
    of fields is an error naming it.
    """
    path = existing_file(path)
    kept = 0

    def on_bad_line(row) -> str:
        if malformed is None:
            return "error"  # Arrow's error names the row and its text
        malformed.keep(path, row.number, row.text, row.expected_columns, row.actual_columns)
        return "skip"

    try:
        header = names or _header(path, sep, encoding)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                use_threads=False,  # line numbers are known only to the serial reader
                block_size=BLOCK_BYTES,
                column_names=header,
                skip_rows=0 if names else 1,
                encoding=encoding,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=sep, newlines_in_values=True, invalid_row_handler=on_bad_line
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        batches = []
        for batch in reader:
            batches.append(batch)
            kept += batch.num_rows
            if sum(b.num_rows for b in batches) >= chunk_rows:
                yield pa.Table.from_batches(batches).to_pandas()
                batches = []
        if batches:
            yield pa.Table.from_batches(batches).to_pandas()
    except (pa.ArrowInvalid, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as CSV: {str(err).splitlines()[0]}") from None
    if malformed is not None:
        malformed.check(path, kept)


def _header(path: Path, sep: str, encoding: str) -> list[str]:
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=sep, invalid_row_handler=lambda row: "skip"),
    )
    return reader.schema.names


def read_table(path: str | Path, **kwargs) -> pd.DataFrame:
    """A whole CSV or Parquet file as a DataFrame (CSV columns as strings)."""
    path = existing_file(path)
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several unrelated types for bad files
            raise DataError(f"{path}: cannot read as Parquet: {err}") from None
    frames = list(read_csv_chunks(path, **kwargs))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
