"""Prepare at scale: events per second, CPU seconds and peak memory of ``tfshop prepare``.

``--data`` is a shop directory; with ``--simulate-events N`` and no directory there yet, a
synthetic shop of about N events is written there first. Prepare runs in a child process, so its
CPU time (user + system) and peak resident memory are measured alone. With ``--baseline DIR`` (a
checkout of an earlier commit, e.g. ``git worktree add ../before <commit>``) the same run
alternates the current code and the code in DIR (``PYTHONPATH``), ``--pairs`` times, and reports
medians per contender and the ratios current / baseline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import medians, parser, write_result

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--simulate-events", type=int, default=0)
    p.add_argument("--baseline", type=Path, help="a checkout of an earlier tfshop to compare with")
    p.add_argument("--pairs", type=int, default=3)
    args = p.parse_args()
    started = time.time()
    if not args.data.exists():
        if not args.simulate_events:
            sys.exit(f"{args.data}: not found (pass --simulate-events N to create a synthetic shop)")
        simulate = [
            "simulate",
            "--out",
            str(args.data),
            "--events",
            str(args.simulate_events),
            "--items",
            "50000",
        ]
        subprocess.run(_tfshop(HERE.parent, *simulate), check=True)
    events = json.loads((args.data / "shop.json").read_text())["counts"]["events"]
    contenders = (
        {"current": HERE.parent, "baseline": args.baseline} if args.baseline else {"current": HERE.parent}
    )
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for pair in range(1 if args.quick or not args.baseline else args.pairs):
        for name, code in contenders.items():
            runs[name].append(_prepare_once(code, args.data, events))
            print(f"pair {pair + 1}: {name} {runs[name][-1]}", flush=True)
    result = {name: medians(found) for name, found in runs.items()}
    ratios = {}
    if args.baseline:
        now, before = result["current"], result["baseline"]
        ratios = {
            "cpu_seconds_ratio": round(now["cpu_seconds"] / before["cpu_seconds"], 3),
            "events_per_sec_ratio": round(now["events_per_sec"] / before["events_per_sec"], 3),
        }
    write_result(
        args.out,
        "tfshop prepare with default PrepareConfig in a child process (CPU = user + system, peak RSS "
        "of that process); contenders alternate in one run, medians over the pairs",
        started,
        events=events,
        **result["current"],
        **({"baseline": result["baseline"], "runs": runs} if args.baseline else {}),
        **ratios,
    )


def _tfshop(code: Path, *argv: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(code)!r}); "
            "from tfshop.cli import main; sys.exit(main())", "-q", *argv]  # fmt: skip


def _prepare_once(code: Path, shop: Path, events: int) -> dict:
    with tempfile.TemporaryDirectory(dir=shop.parent) as scratch:
        out = Path(scratch) / "dataset"
        t0 = time.time()
        child = subprocess.Popen(_tfshop(code, "prepare", "--shop", str(shop), "--out", str(out)))
        _, status, usage = os.wait4(child.pid, 0)  # this child's own usage, not the simulator's
        seconds = time.time() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"prepare ({code}) failed with exit code {os.waitstatus_to_exitcode(status)}")
        report = json.loads((out / "prepare_report.json").read_text())
        size = sum(f.stat().st_size for f in out.glob("*.tfrecord.gz"))
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "examples": sum(report["examples"].values()),
        "prepare_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "cpu_seconds_per_million_events": round(cpu / events * 1e6, 1),
        "events_per_sec": round(events / seconds),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "records_mib": round(size / 2**20, 1),
    }


if __name__ == "__main__":
    main()
