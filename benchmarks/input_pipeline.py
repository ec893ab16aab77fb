"""Throughput of the tf.data input pipeline alone (read, batch, parse), in examples per second.

``--data`` is a prepared dataset directory. Every configuration reads the whole train split
``repeats`` times; the median is reported.
"""

from __future__ import annotations

import time

from common import median, parser, write_result

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema


def examples_per_second(dataset) -> tuple[float, int]:
    """One full pass over ``dataset``: its examples per second and its rows."""
    started, rows = time.perf_counter(), 0
    for _, labels in dataset:
        rows += int(labels["click"].shape[0])
    return rows / (time.perf_counter() - started), rows


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    started = time.time()
    schema = Schema.load(args.data)
    repeats = 1 if args.quick else 3
    runs = {}
    for batch in (256, 1024, 4096):
        for cached in (False, True):
            # one dataset read again and again, so a cache filled by the first pass is reused
            dataset = make_dataset(args.data, "train", InputConfig(batch_size=batch, cache=cached), schema)
            if cached:
                examples_per_second(dataset)  # fills the cache
            rates = []
            for _ in range(repeats):
                rate, rows = examples_per_second(dataset)
                rates.append(rate)
            runs[f"batch_{batch}{'_cached' if cached else ''}"] = round(median(rates))
            print(f"batch {batch:5d} cache={cached!s:5}: {median(rates):12,.0f} examples/s")
    write_result(
        args.out,
        f"whole train split ({rows} rows, {len(schema.features)} features), median of {repeats} reads",
        started,
        examples_per_sec=runs["batch_1024"],
        rows=rows,
        runs=runs,
    )


if __name__ == "__main__":
    main()
