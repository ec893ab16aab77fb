"""Prepare at scale: events per second, CPU seconds and peak memory of ``tfshop prepare``.

``--data`` is a shop directory; with ``--simulate-events N`` and no directory there yet, a
synthetic shop of about N events is written there first. Prepare runs in a child process, so its
CPU time (user + system, with every process it starts: this process becomes their subreaper,
so worker processes orphaned at the end are counted too) and peak resident memory (of prepare's
own process, from the operating system; and of all its processes together, the largest sum of
their proportional set sizes sampled every 2 s) are measured alone. With ``--beam`` the current code
also runs on Apache Beam's DirectRunner (one worker process per core); with ``--baseline DIR``
(a checkout of an earlier commit, e.g. ``git worktree add ../before <commit>``) the code in DIR
(``PYTHONPATH``) runs too. Contenders alternate in one run, ``--pairs`` times; the result holds
medians per contender and ratios to the current in-process run.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from common import medians, parser, write_result

HERE = Path(__file__).resolve().parent
PR_SET_CHILD_SUBREAPER = 36  # prctl option: orphaned descendants are reparented to this process
BEAM = ["--runner", "DirectRunner", "--direct_running_mode=multi_processing"]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--simulate-events", type=int, default=0)
    p.add_argument("--baseline", type=Path, help="a checkout of an earlier tfshop to compare with")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--beam", action="store_true", help="also run on Beam's DirectRunner")
    args = p.parse_args()
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1)
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
    contenders = {"current": (HERE.parent, [])}
    if args.beam:
        contenders["beam"] = (HERE.parent, [*BEAM, f"--direct_num_workers={os.cpu_count()}"])
    if args.baseline:
        contenders["baseline"] = (args.baseline, [])
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for pair in range(1 if args.quick or len(contenders) == 1 else args.pairs):
        for name, (code, options) in contenders.items():
            runs[name].append(_prepare_once(code, args.data, events, options))
            print(f"pair {pair + 1}: {name} {runs[name][-1]}", flush=True)
    result = {name: medians(found) for name, found in runs.items()}
    now, ratios = result["current"], {}
    for name in result.keys() - {"current"}:
        ratios[f"{name}_cpu_seconds_ratio"] = round(result[name]["cpu_seconds"] / now["cpu_seconds"], 3)
        speed = result[name]["events_per_sec"] / now["events_per_sec"]
        ratios[f"{name}_events_per_sec_ratio"] = round(speed, 3)
    write_result(
        args.out,
        "tfshop prepare with default PrepareConfig in a child process (CPU = user + system of it and "
        "every process it started; peak RSS of prepare's own process, and the peak of the sum of "
        "proportional set sizes over all its processes, sampled every 2 s); contenders alternate in "
        "one run, medians over the pairs; ratios are contender / current in-process",
        started,
        events=events,
        **now,
        **{name: found for name, found in result.items() if name != "current"},
        **ratios,
        runs=runs,
    )


def _tfshop(code: Path, *argv: str) -> list[str]:
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(code)!r}); "
            "from tfshop.cli import main; sys.exit(main())", "-q", *argv]  # fmt: skip


def _prepare_once(code: Path, shop: Path, events: int, options: list[str]) -> dict:
    with tempfile.TemporaryDirectory(dir=shop.parent) as scratch:
        out = Path(scratch) / "dataset"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        child = subprocess.Popen(_tfshop(code, "prepare", "--shop", str(shop), "--out", str(out), *options))
        tree_peak = _TreeMemory(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.time() - t0
        tree_peak.stop()
        _reap_descendants()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"prepare ({code}) failed with exit code {os.waitstatus_to_exitcode(status)}")
        report = json.loads((out / "prepare_report.json").read_text())
        size = sum(f.stat().st_size for f in out.glob("*.tfrecord.gz"))
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {
        "examples": sum(report["examples"].values()),
        "prepare_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),
        "cpu_seconds_per_million_events": round(cpu / events * 1e6, 1),
        "events_per_sec": round(events / seconds),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "tree_peak_pss_mib": round(tree_peak.peak / 2**20),
        "records_mib": round(size / 2**20, 1),
    }


class _TreeMemory:
    """The largest sum of proportional set sizes (resident memory, a page shared by n processes
    counted 1/n in each) over a process and its descendants, sampled."""

    def __init__(self, pid: int):
        self.peak, self._done = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(psutil.Process(pid),), daemon=True)
        self._thread.start()

    def _sample(self, root: psutil.Process) -> None:
        while not self._done.wait(2.0):  # reading a process's PSS takes about 20 ms
            total = 0
            try:
                for process in [root, *root.children(recursive=True)]:
                    total += process.memory_full_info().pss
            except psutil.Error:  # a process ended while being read
                continue
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _reap_descendants() -> None:
    """Waits for the processes prepare left behind (its fork server), which exit with it."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


if __name__ == "__main__":
    main()
