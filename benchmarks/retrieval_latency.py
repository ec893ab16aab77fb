"""Latency of the exported ``retrieve`` signature over large catalogues, and the training cost of
joint retrieval.

``--data`` is a prepared dataset with an item catalogue (e.g. ``runs/demo/dataset``). The joint
model (every task of the schema, retrieval included; bag-of-words text, so the numbers are about
retrieval, not the text encoder) trains for ``--steps`` batches of 1,024 after 5 warm-up steps,
and so does the same model without the retrieval task: training examples/second of each (no
validation, no callbacks), and their ratio.

Then, for 10,000, 100,000 and 1,000,000 candidates (the real catalogue's rows tiled under new
ids, so item vectors are realistic), the model is exported with a ``retrieve`` signature
(K = 100), loaded back with ``tf.saved_model.load`` and called in this process on real test
rows, batch 1 and 32: the median and 90th-percentile milliseconds per request. The item tower's
pass over the catalogue at export is timed too.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import median, parser, write_result

CANDIDATES = (10_000, 100_000, 1_000_000)
BATCHES = (1, 32)
BATCH = 1024  # training batch
K = 100


def train_throughput(data: Path, steps: int, with_retrieval: bool):
    """(the trained ranking model, training examples/second over ``steps`` after a warm-up)."""
    import tf_keras as keras

    from tfshop.data.input_config import InputConfig
    from tfshop.data.pipeline import make_dataset
    from tfshop.data.schema import Schema
    from tfshop.models.config import ModelConfig
    from tfshop.models.multitask import build_model, with_retrieval_scores
    from tfshop.training.targets import Targets

    schema = Schema.load(data)
    config = ModelConfig(tasks=[t.name for t in schema.tasks if with_retrieval or t.type != "retrieval"])
    model = build_model(data, config, schema)
    targets = Targets(data, schema, config)
    trained = with_retrieval_scores(model, data, schema, targets.tasks, config)
    trained.compile(optimizer=keras.optimizers.Adam(0.002), **targets.compile_args())
    batches = make_dataset(data, "train", InputConfig(batch_size=BATCH, shuffle=True, repeat=True), schema)
    batches = batches.map(targets)
    trained.fit(batches, epochs=1, steps_per_epoch=5, verbose=0)  # tracing, first steps
    began = time.time()
    trained.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)
    return model, steps * BATCH / (time.time() - began)


def tiled_catalogue(catalogue: pd.DataFrame, size: int) -> pd.DataFrame:
    """``size`` rows: the catalogue repeated, each copy's ids suffixed with its copy number."""
    copies = -(-size // len(catalogue))
    tiled = pd.concat([catalogue.assign(item_id=catalogue["item_id"] + f"#{c}") for c in range(copies)])
    return tiled.iloc[:size].reset_index(drop=True)


def request_rows(data: Path, names: list[str], rows: int) -> dict[str, np.ndarray]:
    from tfshop.data.input_config import InputConfig
    from tfshop.data.pipeline import make_dataset

    features, _ = next(iter(make_dataset(data, "test", InputConfig(batch_size=rows, deterministic=True))))
    return {n: features[n].numpy() for n in names}


def time_calls(signature, inputs: dict, repeats: int) -> list[float]:
    import tensorflow as tf

    tensors = {n: tf.constant(v) for n, v in inputs.items()}
    for _ in range(3):
        signature(**tensors)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        signature(**tensors)["item_ids"].numpy()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="training steps of batch 1024 per model")
    args = p.parse_args()
    started = time.time()
    import tensorflow as tf

    from tfshop.data.catalogue import read_catalogue
    from tfshop.data.schema import Schema
    from tfshop.export.saved_model import RetrievalIndex, export
    from tfshop.models.config import ModelConfig
    from tfshop.models.towers import tower_inputs

    steps = 10 if args.quick else args.steps
    sizes = CANDIDATES[:1] if args.quick else CANDIDATES
    repeats = 10 if args.quick else 100
    schema, catalogue = Schema.load(args.data), read_catalogue(args.data)
    if catalogue is None or not any(t.type == "retrieval" for t in schema.tasks):
        raise SystemExit(f"{args.data}: no item catalogue or retrieval task (prepare a shop with items)")
    scratch = Path(tempfile.mkdtemp(prefix="retrieval-latency-"))
    try:
        model, joint = train_throughput(args.data, steps, True)
        _, ranking = train_throughput(args.data, steps, False)
        print(f"training examples/s: joint {joint:,.0f}, ranking only {ranking:,.0f}")
        query_names, item_names = tower_inputs(model.input_names, args.data, ModelConfig())
        queries = request_rows(args.data, query_names, max(BATCHES))
        latency = {}
        for size in sizes:
            began = time.time()
            index = RetrievalIndex(
                model, schema, tiled_catalogue(catalogue, size), query_names, item_names, K
            )
            index_seconds = time.time() - began
            path = export(model, schema, scratch / "saved_models", "latency", index=index)
            signature = tf.saved_model.load(str(path)).signatures["retrieve"]
            for batch in BATCHES:
                times = time_calls(signature, {n: v[:batch] for n, v in queries.items()}, repeats)
                latency[f"{size}_batch{batch}"] = {
                    "candidates": size,
                    "batch": batch,
                    "p50_ms": round(median(times), 2),
                    "p90_ms": round(float(np.percentile(times, 90)), 2),
                }
                print(f"{size:>9,} candidates, batch {batch:>2}: p50 {median(times):7.2f} ms")
            latency[f"{size}_index_seconds"] = round(index_seconds, 1)
            shutil.rmtree(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_result(
        args.out,
        f"joint model (all schema tasks, bag-of-words text) vs without retrieval, {steps} steps of "
        f"{BATCH} after 5 warm-up steps; retrieve signature K={K} over tiled catalogues, loaded with "
        f"tf.saved_model.load in this process, {repeats} calls after 3 warm-up calls, real test rows",
        started,
        examples_per_sec=round(joint, 1),
        examples_per_sec_without_retrieval=round(ranking, 1),
        training_cost_ratio=round(ranking / joint, 3),
        latency=latency,
    )


if __name__ == "__main__":
    main()
