"""The ``read`` stage: every split read through the tf.data pipeline, rows and label rates printed."""

from __future__ import annotations

import time
from pathlib import Path

from tfshop.pipeline.registry import stage


@stage("read", "read every split through tf.data and print rows and label rates", default=False)
def read(run) -> None:
    read_summary(run.dataset, run.config.input)


def read_summary(dataset: Path, input_config) -> dict[str, dict[str, float]]:
    """Reads every split through the tf.data pipeline; prints rows and each binary label's rate."""
    from tfshop.data.pipeline import make_dataset
    from tfshop.data.schema import Schema

    schema = Schema.load(dataset)
    binary = list(dict.fromkeys(t.label for t in schema.tasks if t.type == "binary" and not t.inputs))
    summary = {}
    print(
        f"\ndataset {dataset}: {len(schema.features)} features, tasks "
        f"{', '.join(t.name for t in schema.tasks) or 'none'}"
    )
    print(f"  {'split':<6} {'rows':>10}" + "".join(f"{label:>10}" for label in binary) + f"{'rows/s':>10}")
    for split in ("train", "valid", "test"):
        started, rows, positives = time.time(), 0, dict.fromkeys(binary, 0)
        for features, labels in make_dataset(dataset, split, input_config, schema):
            rows += int(next(iter(features.values())).shape[0])
            for label in binary:
                positives[label] += int((labels[label].numpy() > 0).sum())
        rate = rows / max(time.time() - started, 1e-9)
        summary[split] = {
            "rows": rows,
            **{f"{label}_rate": n / max(rows, 1) for label, n in positives.items()},
        }
        print(
            f"  {split:<6} {rows:>10}"
            + "".join(f"{n / max(rows, 1):>10.2%}" for n in positives.values())
            + f"{rate:>10,.0f}"
        )
    return summary
