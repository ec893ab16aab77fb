"""The ``incremental`` stage: day-by-day training over a shop's log, one export per day.

The first ``first_days`` days train a model from scratch; its dataset's vocabularies are kept for
every later day. Each later day is prepared as its own window, scored by the current model and
by the first model (never updated) before the model sees it, then trained on with a warm start
from the day before, and exported as the next version next to the previous ones, so a server
watching the export folder picks it up. Writes ``incremental/incremental.json`` (each day's CTR
AUC and log-loss, updated vs first model) and ``incremental/incremental.png``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tfshop.data.schema import Schema
from tfshop.errors import ConfigError
from tfshop.pipeline.registry import stage
from tfshop.pipeline.stages.export import export_trained

log = logging.getLogger(__name__)
DAY = 86_400


@dataclass
class IncrementalConfig:
    first_days: int = 7  # days of the log the first model trains on from scratch
    day_epochs: int = 1  # epochs of each later day's warm-started training
    output: str = "ctr"  # the binary output whose AUC is tracked day by day

    def validate(self) -> None:
        if self.first_days <= 0 or self.day_epochs <= 0:
            raise ValueError("first_days/day_epochs: must be positive")


@stage(
    "incremental",
    "train day by day with warm starts, one export per day",
    output=lambda run: run.dir / "incremental" / "incremental.json",
    default=False,
)
def incremental(run) -> list[dict]:
    """Runs the days of ``run``'s shop (a ``tfshop.pipeline.run.Run``); returns one row per later day."""
    from tfshop.data.prepare import prepare
    from tfshop.models.saved import load_keras
    from tfshop.training.train import train

    config, settings = run.config, run.config.incremental
    folder = run.dir / "incremental"
    start, days = _day_span(run.shop)
    if days <= settings.first_days:
        raise ConfigError(f"incremental.first_days: the log has {days} days, nothing is left for later days")
    first = prepare(
        run.shop,
        folder / "day-00",
        dataclasses.replace(config.prepare, window_to=start + settings.first_days * DAY),
        overwrite=True,
    )
    train(first, folder / "train-00", config.model, config.train)
    export_trained(run, folder / "train-00", first)
    original, rows = load_keras(folder / "train-00" / "model"), []
    previous = folder / "train-00"
    for day in range(settings.first_days, days):
        window = prepare(
            run.shop,
            folder / f"day-{day:02d}",
            dataclasses.replace(
                config.prepare,
                window_from=start + day * DAY,
                window_to=start + (day + 1) * DAY,
                vocab_from=str(first),
            ),
            overwrite=True,
        )
        row = {
            "day": day,
            "updated": _scores(load_keras(previous / "model"), window, config, settings.output),
            "first_model": _scores(original, window, config, settings.output),
        }
        log.info("day %d before its update: %s", day, row)
        daily = dataclasses.replace(config.train, epochs=settings.day_epochs, warm_start=str(previous))
        train(window, folder / f"train-{day:02d}", config.model, daily)
        row["export"] = str(export_trained(run, folder / f"train-{day:02d}", window))
        rows.append(row)
        previous = folder / f"train-{day:02d}"
    (folder / "incremental.json").write_text(json.dumps(rows, indent=2) + "\n")
    _plot(rows, folder / "incremental.png", settings.output)
    _print(rows, settings.output)
    return rows


def _day_span(shop: Path) -> tuple[int, int]:
    """The log's first midnight (UTC) and its number of days."""
    times = [
        pq.read_table(part, columns=["timestamp"]).column(0).to_numpy()
        for part in sorted((shop / "events").glob("part-*.parquet"))
    ]
    first, last = int(min(t.min() for t in times)), int(max(t.max() for t in times))
    start = first - first % DAY
    return start, (last - start) // DAY + 1


def _scores(model, dataset: Path, config, output: str) -> dict[str, float]:
    """``output``'s AUC and log-loss on every example of one day, as the model sees them first."""
    from tfshop.evaluation.evaluate import collect
    from tfshop.evaluation.metrics import binary_metrics
    from tfshop.training.targets import Targets

    schema = Schema.load(dataset)
    targets = Targets(dataset, schema, config.model)
    parts = [collect(model, dataset, split, targets, schema) for split in ("train", "valid", "test")]
    y = np.concatenate([p[f"y/{output}"] for p in parts]).ravel()
    p = np.concatenate([p[f"p/{output}"] for p in parts]).ravel()
    metrics = binary_metrics(y, p)
    return {"auc": round(metrics["auc"], 4), "logloss": round(metrics["logloss"], 4), "examples": int(len(y))}


def _plot(rows: list[dict], path: Path, output: str) -> None:
    from tfshop.evaluation.plots import plt

    days = [r["day"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(days, [r["updated"]["auc"] for r in rows], marker="o", label="updated daily (warm start)")
    ax.plot(days, [r["first_model"]["auc"] for r in rows], marker="o", label="first model, never updated")
    ax.set_xlabel("day (scored before the model trains on it)")
    ax.set_ylabel(f"{output} AUC")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _print(rows: list[dict], output: str) -> None:
    print(f"\n{output} AUC on each day, before training on it:")
    print(f"  {'day':>4} {'updated':>9} {'first':>9} {'examples':>9}  export")
    for r in rows:
        print(
            f"  {r['day']:>4} {r['updated']['auc']:>9.4f} {r['first_model']['auc']:>9.4f} "
            f"{r['updated']['examples']:>9}  {r['export']}"
        )
