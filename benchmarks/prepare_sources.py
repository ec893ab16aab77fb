"""Real logs through both of prepare's runners: the same dataset, and the time each takes.

``--data`` is the folder of public datasets (``../shared/datasets``). Each source is ingested
once, then prepared with the default ``PrepareConfig`` in worker processes and on Apache Beam's
DirectRunner (one worker process per core); the two datasets must hold the same files with the
same bytes (Parquet files: the same rows; the report: the same counts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from common import parser, write_result

BEAM = [
    "--runner",
    "DirectRunner",
    "--direct_running_mode=multi_processing",
    f"--direct_num_workers={os.cpu_count()}",
]
RUN_DEPENDENT = ("seconds", "shop")  # report fields that name the run, not the data
SOURCES = {  # name: (ingest format, input under --data, extra ingest arguments)
    "taobao_userbehavior_sample": ("taobao", "taobao_userbehavior_tiny_sample/UserBehavior_sample.csv", []),
    "movielens_100k": ("movielens", "movielens_100k", []),
    "amazon_beauty": (
        "sequences",
        "amazon_beauty_s3rec/Beauty.txt.gz",
        ["--attributes", "amazon_beauty_s3rec/Beauty_item2attributes.json.gz"],
    ),
    "amazon_video_games": ("sequences", "amazon_video_games_sasrec/Video.txt.gz", []),
}


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    started, results = time.time(), {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, (form, source, extra) in SOURCES.items():
            shop = Path(scratch) / name / "shop"
            extra = [str(args.data / a) if a.endswith(".gz") else a for a in extra]
            _tfshop("ingest", "--format", form, str(args.data / source), "--out", str(shop), *extra)
            runs = {}
            for runner, options in (("in_process", []), ("beam", BEAM)):
                out = Path(scratch) / name / runner
                t0 = time.time()
                _tfshop("prepare", "--shop", str(shop), "--out", str(out), *options)
                runs[runner] = {"seconds": round(time.time() - t0, 1), "folder": out}
            report = json.loads((runs["in_process"]["folder"] / "prepare_report.json").read_text())
            events = report["rows_read"]
            results[name] = {
                "events": events,
                "examples": sum(report["examples"].values()),
                "quarantined": sum(report["quarantined"].values()),
                **{
                    f"{runner}_events_per_sec": round(events / run["seconds"]) for runner, run in runs.items()
                },
                **{f"{runner}_seconds": run["seconds"] for runner, run in runs.items()},
                "same_dataset": _same(runs["in_process"]["folder"], runs["beam"]["folder"]),
            }
            print(name, results[name], flush=True)
    write_result(
        args.out,
        "tfshop ingest, then tfshop prepare (default PrepareConfig) in worker processes and on Beam's "
        "DirectRunner (multi_processing, one worker per core); wall seconds of each prepare including "
        "its start; same_dataset: every file of the two datasets equal",
        started,
        sources=results,
        all_same=all(r["same_dataset"] for r in results.values()),
    )


def _tfshop(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "tfshop.cli", "-q", *argv], check=True)


def _same(a: Path, b: Path) -> bool:
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    if files != sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()):
        return False
    for name in files:
        if name.suffix == ".parquet":
            same = pd.read_parquet(a / name).equals(pd.read_parquet(b / name))
        elif name.name == "prepare_report.json":
            same = _counts(a / name) == _counts(b / name)
        else:
            same = (a / name).read_bytes() == (b / name).read_bytes()
        if not same:
            print(f"{name} differs", flush=True)
            return False
    return True


def _counts(report: Path) -> dict:
    return {k: v for k, v in json.loads(report.read_text()).items() if k not in RUN_DEPENDENT}


if __name__ == "__main__":
    main()
