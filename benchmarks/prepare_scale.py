"""Prepare at scale: events per second and peak memory of ``tfshop prepare`` on a shop directory.

``--data`` is a shop directory; with ``--simulate-events N`` and no directory there yet, a
synthetic shop of about N events is written there first. Prepare runs in a child process, so its
peak resident memory is measured alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import parser, write_result


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--simulate-events", type=int, default=0)
    args = p.parse_args()
    started = time.time()
    tfshop = [sys.executable, "-m", "tfshop.cli", "-q"]
    if not args.data.exists():
        if not args.simulate_events:
            sys.exit(f"{args.data}: not found (pass --simulate-events N to create a synthetic shop)")
        subprocess.run(
            [
                *tfshop,
                "simulate",
                "--out",
                str(args.data),
                "--events",
                str(args.simulate_events),
                "--items",
                "50000",
            ],
            check=True,
        )
    events = json.loads((args.data / "shop.json").read_text())["counts"]["events"]
    with tempfile.TemporaryDirectory(dir=args.data.parent) as scratch:
        out = Path(scratch) / "dataset"
        t0 = time.time()
        child = subprocess.Popen([*tfshop, "prepare", "--shop", str(args.data), "--out", str(out)])
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the simulator's
        seconds = time.time() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            sys.exit(f"prepare failed with exit code {child.returncode}")
        peak_mib = usage.ru_maxrss / 1024
        report = json.loads((out / "prepare_report.json").read_text())
    write_result(
        args.out,
        "tfshop prepare with default PrepareConfig in a child process; peak RSS of that process",
        started,
        events=events,
        examples=sum(report["examples"].values()),
        prepare_seconds=round(seconds, 1),
        events_per_sec=round(events / seconds),
        peak_rss_mib=round(peak_mib),
    )


if __name__ == "__main__":
    main()
