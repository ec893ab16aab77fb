"""Latency of the next-item export's ``recommend`` signature, for the real catalogue and 100,000 items.

``--data``: a sequence file or its folder, as for ``sequential_recommendation.py`` (e.g.
../shared/datasets/amazon_beauty_s3rec). The file goes through ingest and the next-item prepare;
a model of the recommended size (64 wide, 2 blocks, 50 items of history) is exported for the
dataset's catalogue and for 100,000 items (the catalogue's ids repeated under new names), loaded
back with ``tf.saved_model.load`` and called in this process with real test users' histories,
batch 1 and 32, top 10: median and 99th-percentile milliseconds per request over ``--calls``
calls after 5 warm-up calls. The weights are untrained: they do not change the work done.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import median, parser, write_result
from sequential_recommendation import sequence_data

BATCHES = (1, 32)
LARGE = 100_000


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=300, help="timed calls per catalogue and batch size")
    args = p.parse_args()
    started = time.time()
    import tensorflow as tf

    from tfshop.export.next_item import export_next_item
    from tfshop.models.sequential import NextItemModel
    from tfshop.models.sequential_config import SequentialConfig

    data, path = sequence_data(args.data)
    calls = 20 if args.quick else args.calls
    histories = data.split("test")[0][: max(BATCHES)]
    latency = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in (data.num_items, LARGE):
            names = [f"{data.item_ids[i % data.num_items]}#{i // data.num_items}" for i in range(size)]
            counts = np.ones(size + 1)
            model = NextItemModel(size, SequentialConfig(max_length=50, dim=64, num_blocks=2), counts)
            width = max(map(len, histories))
            rows = np.array(
                [[names[i - 1] for i in h] + [""] * (width - len(h)) for h in histories], dtype=bytes
            )
            warmup = {"history": rows[:2], "k": np.array([10, 10], np.int32), "items": rows[:2, :1]}
            export = export_next_item(model, names, Path(scratch), f"latency{size}", warmup, k=10)
            recommend = tf.saved_model.load(str(export)).signatures["recommend"]
            for batch in BATCHES:
                history = tf.constant(rows[:batch])
                for _ in range(5):
                    recommend(history=history)
                times = []
                for _ in range(calls):
                    began = time.perf_counter()
                    recommend(history=history)["item_ids"].numpy()
                    times.append((time.perf_counter() - began) * 1000)
                latency[f"{size}_batch{batch}"] = {
                    "items": size,
                    "batch": batch,
                    "p50_ms": round(median(times), 2),
                    "p99_ms": round(float(np.percentile(times, 99)), 2),
                }
                row = latency[f"{size}_batch{batch}"]
                print(f"{size:>7,} items, batch {batch:>2}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms")
    write_result(
        args.out,
        f"{path.name}: recommend (top 10, seen items left out) of an exported next-item model (64 wide, "
        f"2 blocks, history 50) over the {data.num_items} items and {LARGE} items, tf.saved_model.load "
        f"in this process, real test histories, {calls} calls after 5 warm-up calls",
        started,
        latency=latency,
    )


if __name__ == "__main__":
    main()
