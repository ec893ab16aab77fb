"""``tfshop cluster local``: a whole training cluster as processes on this machine.

Each task gets a free port on 127.0.0.1 and its own ``TF_CONFIG``. Without parameter servers every
worker runs the given ``tfshop train`` command under ``multi_worker``; with them the chief runs
it under ``parameter_server`` while workers and parameter servers run ``tfshop cluster server``.
The chief's output goes to the terminal, every other task's to ``<logs>/<task>.log``. The first
trainer to fail stops the cluster (its log's tail is printed); a server task that dies is started
again, as a cluster manager would, and the coordinator hands its work to the others meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tfshop.errors import ConfigError

log = logging.getLogger(__name__)
RESTARTS = 3  # per server task


@dataclass
class Task:
    job: str
    index: int
    argv: list[str]
    env: dict[str, str]
    log_path: Path | None  # None: the terminal
    trains: bool
    restarts: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.job}-{self.index}"

    def start(self) -> None:
        output = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 (the child owns it)
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=output, stderr=subprocess.STDOUT if output else None
        )
        if output:
            output.close()


def free_ports(count: int) -> list[int]:
    """Ports the system reports free on 127.0.0.1 (held open together, so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def cluster_tasks(workers: int, ps: int, command: list[str], logs: Path) -> list[Task]:
    """Every task of a local cluster: ``workers`` workers and ``ps`` parameter servers (plus a chief)."""
    if not command or command[0] != "train":
        raise ConfigError("cluster local: the command after -- must be `train --config ...`")
    if workers < 1 or ps < 0:
        raise ConfigError("cluster local: --workers must be >= 1 and --ps >= 0")
    strategy = "parameter_server" if ps else "multi_worker"
    counts = {"chief": 1, "worker": workers, "ps": ps} if ps else {"worker": workers}
    ports = iter(free_ports(sum(counts.values())))
    jobs = {job: [f"127.0.0.1:{next(ports)}" for _ in range(n)] for job, n in counts.items()}
    tfshop = [sys.executable, "-m", "tfshop.cli"]
    tasks = []
    for job, n in counts.items():
        for index in range(n):
            trains = job == "chief" or strategy == "multi_worker"
            argv = [*tfshop, *command, "--strategy", strategy] if trains else [*tfshop, "cluster", "server"]
            env = {
                **os.environ,
                "TF_CONFIG": json.dumps({"cluster": jobs, "task": {"type": job, "index": index}}),
            }
            first = (job, index) == (("chief", 0) if ps else ("worker", 0))
            tasks.append(Task(job, index, argv, env, None if first else logs / f"{job}-{index}.log", trains))
    return tasks


def run_cluster(tasks: list[Task], poll_seconds: float = 0.5) -> int:
    """Starts ``tasks`` and waits for the trainers; returns the first failing exit code, else 0."""
    for task in tasks:
        if task.log_path:
            task.log_path.parent.mkdir(parents=True, exist_ok=True)
            task.log_path.write_bytes(b"")
        task.start()
        log.info(
            "started %s (pid %d)%s",
            task.name,
            task.process.pid,
            f", log {task.log_path}" if task.log_path else "",
        )
    try:
        return _supervise(tasks, poll_seconds)
    finally:
        for task in tasks:
            if task.process.poll() is None:
                task.process.terminate()
        for task in tasks:
            try:
                task.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                task.process.kill()
                task.process.wait()


def _supervise(tasks: list[Task], poll_seconds: float) -> int:
    while True:
        trainers = [t for t in tasks if t.trains]
        for task in trainers:
            code = task.process.poll()
            if code not in (None, 0):
                print(f"tfshop: error: {task.name} exited with code {code}{_tail(task)}", file=sys.stderr)
                return code
        if all(t.process.poll() == 0 for t in trainers):
            return 0
        for task in tasks:
            if not task.trains and task.process.poll() is not None:
                if task.restarts >= RESTARTS:
                    print(
                        f"tfshop: error: {task.name} died {RESTARTS + 1} times{_tail(task)}", file=sys.stderr
                    )
                    return 1
                task.restarts += 1
                log.warning("%s exited (code %s); starting it again", task.name, task.process.returncode)
                task.start()
        time.sleep(poll_seconds)


def _tail(task: Task, lines: int = 20) -> str:
    if task.log_path is None or not task.log_path.exists():
        return ""
    tail = task.log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {task.log_path}:\n" + "\n".join(tail)
