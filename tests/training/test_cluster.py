"""Training on a cluster of local processes: multi-worker, parameter servers, lost workers, bad TF_CONFIG."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from tfshop.errors import ConfigError
from tfshop.training.cluster import check_port_free, read_tf_config
from tfshop.training.launch import cluster_tasks, run_cluster

TRAIN = {
    "epochs": 2,
    "batch_size": 256,
    "steps_per_epoch": 30,
    "learning_rate": 0.01,
    "verbose": 0,
    "monitor": "val_ctr_auc",
}
# Whole epochs at a gentle rate: runs converge, so two ways of training the same model differ by
# less than run-to-run noise. The best epoch (the one training keeps) is compared: the last one
# may already overfit. Single- and two-worker runs reach a best val CTR AUC of 0.739-0.753 and a
# best val CTR loss of 0.163-0.166 on the small shop; the two runs of a pair differed by at most
# 0.013 AUC and 1.2 % loss. The CVR loss, over the few clicked rows, varies by 5 % between runs,
# so the total loss is not compared.
CONVERGED = {"steps_per_epoch": 0, "learning_rate": 0.005}
MODEL = {"tasks": ["ctr", "cvr"], "embedding_dim": 8, "expert_units": [16], "tower_units": [8]}


def write_config(tmp_path, dataset, name="run", **train) -> tuple:
    run = tmp_path / name
    run.mkdir()
    (run / "dataset").symlink_to(dataset)
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"run_dir": str(run), "model": MODEL, "train": {**TRAIN, **train}}))
    return config, run


def history(run) -> dict:
    return json.loads((run / "train" / "history.json").read_text())["epochs"]


def tfshop(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tfshop.cli", "-q", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


@pytest.mark.slow  # two runs to convergence, compared within their seed spread (a benchmark)
def test_two_workers_match_one_process_with_the_same_global_batch(small_dataset, tmp_path):
    single_config, single = write_config(tmp_path, small_dataset, "single", **CONVERGED)
    multi_config, multi = write_config(tmp_path, small_dataset, "multi", **CONVERGED)
    assert tfshop("train", "--config", str(single_config)).returncode == 0
    result = tfshop(
        "cluster",
        "local",
        "--workers",
        "2",
        "--logs",
        str(tmp_path / "logs"),
        "--",
        "train",
        "--config",
        str(multi_config),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = history(single), history(multi)
    assert len(two["val_ctr_auc"]) == 2
    best_auc_one, best_auc_two = max(one["val_ctr_auc"]), max(two["val_ctr_auc"])
    assert best_auc_one > 0.7 and best_auc_two > 0.7  # both learnt something
    assert abs(best_auc_two - best_auc_one) < 0.02
    assert abs(min(two["val_ctr_loss"]) / min(one["val_ctr_loss"]) - 1) < 0.03
    # Only the chief wrote: the run's files once, no worker's temporary copies left behind.
    assert (multi / "train" / "model" / "saved_model.pb").exists()
    assert not [p for p in multi.rglob("*") if "workertemp" in p.name]


def run_in_background(tasks) -> tuple[threading.Thread, dict]:
    result = {}
    thread = threading.Thread(target=lambda: result.update(code=run_cluster(tasks)), daemon=True)
    thread.start()
    return thread, result


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_parameter_servers_train_and_survive_a_lost_worker(small_dataset, tmp_path):
    from tfshop.data.schema import Schema
    from tfshop.models.config import ModelConfig
    from tfshop.models.multitask import build_model
    from tfshop.models.saved import load_keras

    config, run = write_config(tmp_path, small_dataset)
    tasks = cluster_tasks(2, 2, ["train", "--config", str(config)], tmp_path / "logs")
    assert [t.name for t in tasks] == ["chief-0", "worker-0", "worker-1", "ps-0", "ps-1"]
    thread, result = run_in_background(tasks)
    wait_for((run / "train" / "best").exists, 300, "the first epoch")
    lost = tasks[2]
    lost.process.kill()  # mid-training; the coordinator retries its steps elsewhere, the launcher restarts it
    thread.join(timeout=400)
    assert result.get("code") == 0 and lost.restarts == 1
    epochs = history(run)
    assert len(epochs["val_ctr_auc"]) == 2 and epochs["val_ctr_auc"][-1] > 0.6
    # The saved model has whole tables, as a single-process model has: the export is the same.
    saved = load_keras(run / "train" / "model")
    fresh = build_model(small_dataset, ModelConfig.of(**MODEL), Schema.load(small_dataset))
    assert [(w.name, w.shape) for w in saved.weights] == [(w.name, w.shape) for w in fresh.weights]


def test_killed_training_resumes_from_its_backup(small_dataset, tmp_path):
    config, run = write_config(tmp_path, small_dataset, epochs=3, backup_every_steps=10, **CONVERGED)
    process = subprocess.Popen([sys.executable, "-m", "tfshop.cli", "-q", "train", "--config", str(config)])
    try:
        wait_for((run / "train" / "best").exists, 300, "the first epoch")
        first = time.time()
        wait_for(lambda: newest_change(run / "train" / "backup") > first, 120, "a backup in epoch 2")
    finally:
        process.kill()  # SIGKILL in the middle of the second epoch
    process.wait()
    assert not (run / "train" / "model").exists()
    assert tfshop("train", "--config", str(config)).returncode == 0
    resumed = history(run)
    assert len(resumed["val_ctr_auc"]) == 2  # epochs 2 and 3 only: the restart continued the run
    assert max(resumed["val_ctr_auc"]) > 0.7  # as an uninterrupted run (0.739-0.753, see CONVERGED)


def test_killed_worker_stops_the_cluster_and_a_restart_resumes(small_dataset, tmp_path):
    config, run = write_config(tmp_path, small_dataset, epochs=2, backup_every_steps=10)
    command = ["train", "--config", str(config)]
    tasks = cluster_tasks(2, 0, command, tmp_path / "logs")
    thread, result = run_in_background(tasks)
    wait_for((run / "train" / "best").exists, 300, "the first epoch")
    tasks[1].process.kill()
    thread.join(timeout=120)
    assert result.get("code") == -9  # the launcher reports the lost worker and stops the other
    assert all(t.process.poll() is not None for t in tasks)
    again = tfshop("cluster", "local", "--workers", "2", "--logs", str(tmp_path / "logs"), "--", *command)
    assert again.returncode == 0, again.stderr[-3000:]
    epochs = history(run)
    assert len(epochs["val_ctr_auc"]) == 1 and epochs["val_ctr_auc"][-1] > 0.6  # epoch 2 only: resumed
    # Only the chief wrote: the run's files once, no worker's temporary copies left behind.
    assert (run / "train" / "model" / "saved_model.pb").exists()
    assert not [p for p in run.rglob("*") if "workertemp" in p.name]


def newest_change(folder) -> float:
    """The newest modification time under `folder`; a file the backup rotates away meanwhile is skipped."""
    times = []
    for path in folder.rglob("*"):
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:
            continue
    return max(times, default=0.0)


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "TF_CONFIG environment variable is not set"),
        ("{cluster", "not valid JSON"),
        ({"task": {"type": "worker", "index": 0}}, 'needs a "cluster" mapping'),
        ({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}, "is not host:port"),
        ({"cluster": {"evaluator": ["h:1"]}, "task": {"type": "evaluator", "index": 0}}, "job 'evaluator'"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "ps", "index": 0}}, "not a job of the cluster"),
        ({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}, "out of range"),
        ({"cluster": {"worker": ["h:1"]}}, 'needs "task"'),
    ],
)
def test_bad_tf_config_is_named(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config if isinstance(tf_config, str) else json.dumps(tf_config))
    with pytest.raises(ConfigError, match=message):
        read_tf_config("multi_worker")


def test_parameter_servers_need_every_role(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "chief", "index": 0}}),
    )
    with pytest.raises(ConfigError, match="one chief, at least one worker and one ps"):
        read_tf_config("parameter_server")


def test_a_port_in_use_is_named(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        cluster = {"cluster": {"worker": [f"127.0.0.1:{port}"]}, "task": {"type": "worker", "index": 0}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
        with pytest.raises(ConfigError, match=f"port {port} of worker:0 .* is in use"):
            check_port_free(read_tf_config("multi_worker"))


def test_a_worker_that_never_starts_ends_the_run_within_the_timeout(small_dataset, tmp_path):
    config, _ = write_config(tmp_path, small_dataset, cluster_timeout=10)
    ports = [s for s in (socket.socket(), socket.socket())]
    for s in ports:
        s.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in ports]
    for s in ports:
        s.close()
    tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 0}}
    started = time.time()
    result = tfshop(
        "train",
        "--config",
        str(config),
        "--strategy",
        "multi_worker",
        env={"TF_CONFIG": json.dumps(tf_config)},
        timeout=120,
    )
    assert result.returncode == -9 and time.time() - started < 90
    assert "joining the multi-worker cluster did not finish within 10 s" in result.stderr
    assert f"worker:1 at {addresses[1]}" in result.stderr


def test_cluster_local_wants_a_train_command():
    with pytest.raises(ConfigError, match="must be `train --config"):
        cluster_tasks(2, 0, ["evaluate", "--config", "x.yaml"], None)
