"""The ``read`` stage: every split read through the tf.data pipeline, rows and label rates printed."""

from __future__ import annotations

import time
from pathlib import Path

from tfshop.pipeline.registry import stage


@stage("read", "read every split through tf.data and print rows and label rates", default=False)
def read(run) -> None:
    read_summary(run.dataset, run.config.input)


def read_summary(dataset: Path, input_config) -> dict[str, dict[str, float]]:
    """Reads every split through the tf.data pipeline and prints rows and label rates."""
    from tfshop.data.pipeline import make_dataset
    from tfshop.data.schema import Schema

    schema = Schema.load(dataset)
    summary = {}
    print(
        f"\ndataset {dataset}: {len(schema.features)} features, tasks "
        f"{', '.join(t.name for t in schema.tasks) or 'none'}"
    )
    print(f"  {'split':<6} {'rows':>10} {'click':>8} {'purchase':>9} {'rows/s':>10}")
    for split in ("train", "valid", "test"):
        started, rows, clicks, purchases = time.time(), 0, 0, 0
        for _, labels in make_dataset(dataset, split, input_config, schema):
            rows += int(labels["click"].shape[0])
            clicks += int(labels["click"].numpy().sum())
            purchases += int(labels["purchase"].numpy().sum())
        rate = rows / max(time.time() - started, 1e-9)
        summary[split] = {
            "rows": rows,
            "click_rate": clicks / max(rows, 1),
            "purchase_rate": purchases / max(rows, 1),
        }
        print(
            f"  {split:<6} {rows:>10} {clicks / max(rows, 1):>8.2%} {purchases / max(rows, 1):>9.3%} "
            f"{rate:>10,.0f}"
        )
    return summary
