"""Multi-task (ESMM + MMoE/PLE) against single-task models of the same architecture.

``--data`` is a prepared dataset directory with a CTR task and a CVR task under it (the demo's
``runs/demo/dataset``). For each of 3 training seeds: the multi-task model and single-task
models for ``ctr``, ``cvr`` (on clicked rows) and ``ctcvr`` (purchases on all impressions) are
trained with the same settings and scored on the test split; the oracle is the simulator's truth.
Reports mean and std over seeds of each AUC, the multi-task minus single-task differences, the
share of the way from 0.5 to the oracle, and training examples per second.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import parser, write_result

from tfshop.data.schema import Schema
from tfshop.evaluation.evaluate import evaluate, single_task_config
from tfshop.models.config import ModelConfig
from tfshop.training.config import TrainConfig
from tfshop.training.train import train

OUTPUTS = ("ctr", "cvr", "ctcvr")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--block", default="mmoe", choices=["shared_bottom", "mmoe", "ple"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument(
        "--text-encoder", default="", help='"default" or a BERT directory: frozen pretrained text encoder'
    )
    args = p.parse_args()
    started = time.time()
    seeds = [0] if args.quick else [0, 1, 2]
    schema = Schema.load(args.data)
    train_rows = json.loads((args.data / "prepare_report.json").read_text())["examples"]["train"]
    model_config = ModelConfig.of(block=args.block, text_encoder=args.text_encoder)
    auc = {o: {"multitask": [], "single_task": [], "oracle": []} for o in OUTPUTS}
    speed = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            config = TrainConfig(epochs=args.epochs, seed=seed, verbose=0)
            run = Path(scratch) / f"seed{seed}"
            t0 = time.time()
            model = train(args.data, run / "multitask", model_config, config)
            epochs = len(json.loads((run / "multitask" / "history.json").read_text())["epochs"]["loss"])
            speed.append(train_rows * epochs / (time.time() - t0))
            singles = {}
            for output in OUTPUTS:
                single_config, single_schema = single_task_config(model_config, output, schema)
                singles[output] = train(args.data, run / output, single_config, config, single_schema)
            report = evaluate(args.data, model, model_config, singles)
            for output in OUTPUTS:
                for who in auc[output]:
                    auc[output][who].append(report[output][who]["auc"])
            print(
                f"seed {seed}: "
                + ", ".join(
                    f"{o} {report[o]['multitask']['auc']:.4f} vs {report[o]['single_task']['auc']:.4f}"
                    for o in OUTPUTS
                )
            )
    summary = {}
    for output, rows in auc.items():
        multi, single, oracle = (np.array(rows[k]) for k in ("multitask", "single_task", "oracle"))
        summary[output] = {
            "auc_multitask": _mean_std(multi),
            "auc_single_task": _mean_std(single),
            "auc_oracle": _mean_std(oracle),
            "auc_gain": _mean_std(multi - single),
            "share_of_oracle_gap": _mean_std((multi - 0.5) / (oracle - 0.5)),
        }
    write_result(
        args.out,
        f"{args.block}{', text encoder ' + args.text_encoder if args.text_encoder else ''}, "
        f"at most {args.epochs} epochs (best validation epoch kept), seeds {seeds}; "
        "test split AUC; cvr on clicked rows, ctr/ctcvr on all impressions",
        started,
        **{f"{o}_{k}": v for o, d in summary.items() for k, v in d.items()},
        examples_per_sec=round(float(np.median(speed))),
    )


def _mean_std(values: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}


if __name__ == "__main__":
    main()
