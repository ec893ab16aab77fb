"""One run directory and the loop that runs a config's stages in it, skipping finished ones.

Run directory: ``shop/``, ``dataset/``, ``train/`` (model, logs, history), ``baselines/<output>/``
(single-task models), ``eval/`` (report and plots), ``export.json`` (where the SavedModel went),
``serve.log``, ``incremental/`` (day-by-day datasets, models and the report), ``pretrain/`` (a
next-item run's pre-trained model, logs and losses).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from tfshop.errors import ConfigError
from tfshop.pipeline.config import PipelineConfig
from tfshop.pipeline.registry import stages

log = logging.getLogger(__name__)


class Run:
    """The paths of one pipeline config's run directory."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.dir = Path(config.run_dir)
        self.shop, self.dataset = self.dir / "shop", self.dir / "dataset"
        self.train_dir, self.eval_dir = self.dir / "train", self.dir / "eval"


def run_pipeline(config: PipelineConfig, force: bool = False) -> dict[str, float]:
    """Runs the configured stages in order; returns seconds per stage (0 when skipped).

    A stage whose output exists is skipped unless ``force``.
    """
    try:  # a config read from YAML is checked already; one built in Python is checked here
        config.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    run, registry = Run(config), stages()
    run.dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name in config.stages:
        stage = registry[name]
        output = stage.output(run)
        if output is not None and output.exists() and not force:
            log.info("stage %s: %s exists, skipped (use --force to redo)", name, output)
            timings[name] = 0.0
            continue
        started = time.time()
        log.info("stage %s: started", name)
        stage.run(run)
        timings[name] = time.time() - started
    print("\nstage timings:")
    for name, seconds in timings.items():
        print(f"  {name:<11} {seconds:8.1f}s" + ("  (skipped)" if seconds == 0 else ""))
    if (run.eval_dir / "eval_report.md").exists():
        print(f"\ntest-split results ({run.eval_dir / 'eval_report.md'}):")
        print((run.eval_dir / "eval_report.md").read_text())
        print(f"model: {run.train_dir / 'model'}   plots: {run.eval_dir}")
        print(f"TensorBoard: tensorboard --logdir {run.train_dir / 'logs'}")
    return timings
