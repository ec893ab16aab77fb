"""The training cluster: TF_CONFIG checked, the ``tf.distribute`` strategy made, the chief named.

``train.strategy`` picks the strategy: ``default`` (one device), ``mirrored`` (every local GPU),
``multi_worker`` (``MultiWorkerMirroredStrategy``: every worker runs ``tfshop train`` with its own
``TF_CONFIG``) or ``parameter_server`` (``ParameterServerStrategy``: the chief runs ``tfshop
train``, workers and parameter servers run ``tfshop cluster server``; embedding tables are split
over the parameter servers). A cluster that does not come up within ``cluster_timeout`` seconds
gets the process killed, with a message naming the addresses, instead of waiting for ever.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import tensorflow as tf

from tfshop.errors import ConfigError

log = logging.getLogger(__name__)
ROLES = {
    "multi_worker": ("chief", "worker"),
    "parameter_server": ("chief", "worker", "ps"),
}
SERVER_ROLES = ("worker", "ps")  # the tasks that only run a server under parameter_server


@dataclass(frozen=True)
class ClusterSpec:
    """This process's place in the cluster, from ``TF_CONFIG``."""

    jobs: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.task_index]

    @property
    def is_chief(self) -> bool:
        """The chief task, or worker 0 when the cluster has no chief."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    def peers(self) -> list[str]:
        return [f"{job}:{i} at {a}" for job, addresses in self.jobs.items() for i, a in enumerate(addresses)]


def read_tf_config(strategy: str) -> ClusterSpec:
    """Parses and checks ``TF_CONFIG`` for ``strategy``; every mistake is a ConfigError naming it."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        raise ConfigError(f"train.strategy {strategy}: the TF_CONFIG environment variable is not set")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"TF_CONFIG: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cluster"), dict):
        raise ConfigError('TF_CONFIG: needs a "cluster" mapping of job name to addresses')
    jobs = data["cluster"]
    allowed = ROLES[strategy]
    for job, addresses in jobs.items():
        if job not in allowed:
            raise ConfigError(f"TF_CONFIG: job {job!r} is not one of {', '.join(allowed)} under {strategy}")
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f"TF_CONFIG: cluster.{job} must be a non-empty list of host:port")
        for address in addresses:
            _host_port(address, f"cluster.{job}")
    task = data.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigError('TF_CONFIG: needs "task": {"type": ..., "index": ...}')
    task_type, index = task["type"], task["index"]
    if task_type not in jobs:
        raise ConfigError(
            f"TF_CONFIG: task type {task_type!r} is not a job of the cluster ({', '.join(jobs)})"
        )
    if not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise ConfigError(
            f"TF_CONFIG: task index {index!r} is out of range for {len(jobs[task_type])} {task_type}"
        )
    incomplete = len(jobs.get("chief", [])) != 1 or not jobs.get("ps") or not jobs.get("worker")
    if strategy == "parameter_server" and incomplete:
        raise ConfigError("TF_CONFIG: parameter_server needs one chief, at least one worker and one ps")
    return ClusterSpec(jobs, task_type, index)


def _host_port(address, where: str) -> tuple[str, int]:
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"TF_CONFIG: {where}: {address!r} is not host:port")
    return host, int(port)


def check_port_free(spec: ClusterSpec) -> None:
    """A ConfigError if this task's own port is taken (another run, or a stale process)."""
    host, port = _host_port(spec.address, spec.task_type)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no obstacle
        try:
            probe.bind(("" if host not in ("localhost", "127.0.0.1") else host, port))
        except OSError:
            raise ConfigError(
                f"TF_CONFIG: port {port} of {spec.task_type}:{spec.task_index} ({spec.address}) is in use"
            ) from None


# Sleeps, prints the message and kills the process given (unless killed first itself).
WATCHDOG = (
    "import os, sys, time; time.sleep(float(sys.argv[2])); "
    "print(sys.argv[3], file=sys.stderr); os.kill(int(sys.argv[1]), 9)"
)


@contextmanager
def deadline(seconds: float, what: str, spec: ClusterSpec) -> Iterator[None]:
    """Kills this process, with a message naming the cluster, if the block runs past ``seconds``.

    Joining a cluster blocks inside TensorFlow, holding the interpreter, while a peer is missing;
    neither an exception nor a thread can interrupt that, so a watchdog process does.
    """
    message = (
        f"tfshop: error: {what} did not finish within {seconds:.0f} s (cluster: {'; '.join(spec.peers())}); "
        "is every task started, and are the addresses right?"
    )
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(seconds), message])
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()


def make_strategy(name: str, timeout: float) -> tf.distribute.Strategy:
    """The strategy ``train.strategy`` names, with the cluster joined (or a clear error)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    spec = read_tf_config(name)
    if name == "multi_worker":
        check_port_free(spec)
        with deadline(timeout, "joining the multi-worker cluster", spec):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            strategy.reduce("SUM", strategy.run(lambda: tf.constant(1)), axis=None)  # every worker is up
        log.info("multi-worker: %s, %d replicas", spec.peers(), strategy.num_replicas_in_sync)
        return strategy
    if not spec.is_chief:
        raise ConfigError(
            f"TF_CONFIG: task {spec.task_type}:{spec.task_index} runs `tfshop cluster server`, not train "
            "(under parameter_server only the chief trains)"
        )
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=256 << 10, max_shards=len(spec.jobs["ps"])
    )
    with deadline(timeout, "connecting to the parameter servers and workers", spec):
        strategy = tf.distribute.experimental.ParameterServerStrategy(
            resolver, variable_partitioner=partitioner
        )
    log.info("parameter servers: %s", spec.peers())
    return strategy


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (always, outside multi-worker training)."""
    extended = strategy.extended
    return not extended._in_multi_worker_mode() or extended.should_checkpoint


def serve_task() -> None:
    """Runs this parameter-server cluster task (a worker or a ps) until the process is killed."""
    spec = read_tf_config("parameter_server")
    if spec.task_type not in SERVER_ROLES:
        raise ConfigError(
            f"TF_CONFIG: task type {spec.task_type!r} trains with `tfshop train`; servers are worker or ps"
        )
    check_port_free(spec)
    server = tf.distribute.Server(
        tf.train.ClusterSpec(spec.jobs), job_name=spec.task_type, task_index=spec.task_index, protocol="grpc"
    )
    log.info("%s:%d serving at %s", spec.task_type, spec.task_index, spec.address)
    server.join()
