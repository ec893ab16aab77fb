"""Runs the pipeline's stages in one run directory, each skippable and resumable.

A stage whose output already exists is skipped (``force`` redoes it); stages talk only through
files in the run directory. Stage timings are printed at the end.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tfshop.config import from_dict, load_yaml
from tfshop.data.pipeline import InputConfig
from tfshop.data.prepare import PrepareConfig
from tfshop.data.simulate import SimulateConfig

log = logging.getLogger(__name__)
Stage = Literal["simulate", "prepare", "read"]
STAGES: tuple[str, ...] = ("simulate", "prepare", "read")


@dataclass
class PipelineConfig:
    """A whole run: where it lives, which stages run, and each stage's knobs."""

    run_dir: str = "runs/demo"
    stages: list[Stage] = field(default_factory=lambda: list(STAGES))
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    input: InputConfig = field(default_factory=InputConfig)

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        return from_dict(cls, load_yaml(path), str(path))


def run_pipeline(config: PipelineConfig, force: bool = False) -> dict[str, float]:
    """Runs the configured stages in order; returns seconds per stage (0 when skipped)."""
    from tfshop.data.prepare import prepare
    from tfshop.data.simulate import simulate

    run = Path(config.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    shop, dataset = run / "shop", run / "dataset"
    steps = {
        "simulate": (shop, lambda: simulate(config.simulate, shop, overwrite=True)),
        "prepare": (dataset, lambda: prepare(shop, dataset, config.prepare, overwrite=True)),
        "read": (None, lambda: read_summary(dataset, config.input)),
    }
    timings = {}
    for stage in config.stages:
        output, action = steps[stage]
        if output is not None and output.exists() and not force:
            log.info("stage %s: %s exists, skipped (use --force to redo)", stage, output)
            timings[stage] = 0.0
            continue
        started = time.time()
        log.info("stage %s: started", stage)
        action()
        timings[stage] = time.time() - started
    print("\nstage timings:")
    for stage, seconds in timings.items():
        print(f"  {stage:<10} {seconds:8.1f}s" + ("  (skipped)" if seconds == 0 else ""))
    return timings


def read_summary(dataset: Path, input_config: InputConfig) -> dict[str, dict[str, float]]:
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
