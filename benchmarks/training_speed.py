"""Training speed of the multi-task model, against an earlier checkout of tfshop in the same run.

``--data`` is a prepared dataset (the 600k shop's). The default multi-task model (every output:
ctr, cvr, ctcvr, rating, intent, item_category, item_attributes, relevance, retrieval; bag-of-words
text) trains for ``--epochs`` epochs with the default ``TrainConfig`` in a fresh process. With
``--baseline DIR`` (a checkout of an earlier commit, e.g. ``git worktree add ../before <commit>``),
the same run alternates the current code and the code in DIR (``PYTHONPATH``), ``--pairs`` times.
Reported per contender (medians): ``examples_per_sec`` (training rows over the training part of
each epoch after the first), ``first_epoch_seconds``, ``later_epoch_seconds`` with and without
validation, the last epoch's validation AUCs; and the ratios current / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import clock_tfshop_training, epoch_timings, median, medians, parser, write_result

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--baseline", type=Path, help="a checkout of an earlier tfshop to compare with")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        args.out.write_text(json.dumps(run(args.data, args.worker, args.epochs)))
        return
    started = time.time()
    contenders = {"current": HERE.parent} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    pairs = 1 if args.quick else args.pairs
    runs = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as scratch:
        for pair in range(pairs):
            for name, code in contenders.items():
                out = Path(scratch) / f"{name}{pair}.json"
                command = [sys.executable, __file__, "--data", str(args.data), "--out", str(out)]
                command += ["--epochs", str(args.epochs), "--worker", str(Path(scratch) / f"{name}{pair}")]
                env = {**os.environ, "PYTHONPATH": str(code), "TF_CPP_MIN_LOG_LEVEL": "2"}
                subprocess.run(command, check=True, env=env, cwd=code)
                runs[name].append(json.loads(out.read_text()))
                print(f"pair {pair + 1}/{pairs} {name}: {json.dumps(runs[name][-1])}", flush=True)
    summary = {name: medians(results) for name, results in runs.items()}
    ratios = {}
    if args.baseline:
        ratios = {
            "examples_per_sec_ratio": round(
                median([a["examples_per_sec"] / b["examples_per_sec"] for a, b in zip(*runs.values())]), 3
            )
        }
    write_result(
        args.out,
        f"default multi-task model, default TrainConfig, {args.epochs} epochs, {pairs} alternating "
        "pair(s) of fresh processes; medians",
        started,
        **summary,
        **ratios,
    )


def run(data: Path, out: Path, epochs: int) -> dict:
    import tfshop
    from tfshop.models.config import ModelConfig
    from tfshop.training.config import TrainConfig
    from tfshop.training.train import train

    clock = clock_tfshop_training()
    train(data, out, ModelConfig(), TrainConfig(epochs=epochs, verbose=0))
    history = json.loads((out / "history.json").read_text())["epochs"]
    rows = json.loads((data / "prepare_report.json").read_text())["examples"]["train"]
    print(f"trained with {tfshop.__file__}", flush=True)
    aucs = {k: round(v[-1], 4) for k, v in history.items() if k.startswith("val_") and k.endswith("auc")}
    return {**epoch_timings(clock, rows), **aucs}


if __name__ == "__main__":
    main()
