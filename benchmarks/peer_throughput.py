"""Training throughput of tfshop against a peer library on the same data, side by side.

``--peer deepctr`` (the default): DeepCTR's MMoE on a prepared shop dataset flattened to a table
(``benchmarks/peers/deepctr_mmoe.py``). ``--peer tfrs``: the TensorFlow Recommenders multitask
tutorial's model on its MovieLens split (``benchmarks/peers/tfrs_multitask.py``). Each module's
docstring gives its protocol and the sizes both contenders share.

Each run is a fresh process; the contenders alternate (A B A B A B) and the medians are reported:
``examples_per_sec`` (training rows over the training part of each epoch after the first),
``first_epoch_seconds``, ``later_epoch_seconds``, test metrics, parameter counts, and the ratio
tfshop / peer of examples/s per pair and its median. The peers are benchmark-only dependencies:
``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import median, medians, parser, write_result

PEERS = {"deepctr": "peers.deepctr_mmoe", "tfrs": "peers.tfrs_multitask"}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--peer", choices=PEERS, default="deepctr")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--worker", choices=("tfshop", "peer"), help=argparse.SUPPRESS)
    p.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    peer = importlib.import_module(PEERS[p.parse_known_args()[0].peer])
    peer.add_arguments(p)
    args = p.parse_args()
    if args.worker:
        result = peer.run_tfshop(args) if args.worker == "tfshop" else peer.run_peer(args)
        args.out.write_text(json.dumps(result))
        return
    started = time.time()
    pairs = 1 if args.quick else args.pairs
    with tempfile.TemporaryDirectory() as scratch:
        table, train_rows = peer.setup(args, Path(scratch) / "table")
        runs = {"tfshop": [], args.peer: []}
        for pair in range(pairs):
            for name in runs:
                out = Path(scratch) / f"{name}{pair}.json"
                runs[name].append(worker("tfshop" if name == "tfshop" else "peer", table, out))
                print(f"pair {pair + 1}/{pairs} {name}: {json.dumps(runs[name][-1])}", flush=True)
    ratios = [a["examples_per_sec"] / b["examples_per_sec"] for a, b in zip(runs["tfshop"], runs[args.peer])]
    write_result(
        args.out,
        f"{peer.protocol(args)}; {pairs} alternating pairs of fresh processes; medians",
        started,
        train_rows=train_rows,
        **{name: medians(results) for name, results in runs.items()},
        examples_per_sec_ratio=median(ratios),
        examples_per_sec_ratio_per_pair=[round(r, 2) for r in ratios],
    )


def worker(role: str, table: Path, out: Path) -> dict:
    """One contender's run in a fresh process, with this run's arguments."""
    command = [sys.executable, __file__, *sys.argv[1:], "--worker", role, "--table", str(table)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}  # peers import tf.keras
    subprocess.run([*command, "--out", str(out)], check=True, env=env)
    return json.loads(out.read_text())


if __name__ == "__main__":
    main()
