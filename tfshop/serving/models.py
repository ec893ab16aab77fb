"""Which model versions are served: loading, warm-up, version policy, labels and hot reload.

Each model has a base path holding integer version directories (TF Serving's layout). A poll
lists them, loads the versions the policy wants (``latest`` N, ``all``, ``specific``), replays
each one's warm-up requests and only then serves it; versions the policy no longer wants are
unloaded. A version that fails to load or warm up is reported (state ``END`` with its error)
and tried again when its directory changes or after a backoff (1, 2, 4 ... 60 s: a copy may
still be under way), while the versions already serving carry on. Requests
hold the version they resolved, so unloading never cuts one short.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers its ops, which stock TF Serving links too)

from tfshop.errors import ConfigError
from tfshop.serving.batching import Batcher, BatchingOptions
from tfshop.serving.deadline import NO_DEADLINE, Deadline
from tfshop.serving.status import ServingError, invalid, not_found
from tfshop.serving.tensors import SignatureSpec, from_proto

log = logging.getLogger(__name__)
Arrays = dict[str, np.ndarray]
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
CHUNK_ROWS = 128  # rows per model call of a larger request: how often it checks its deadline
RETRY_MAX_SECONDS = 60.0  # a version that failed to load is tried again, waiting up to this long


@dataclass
class ModelSource:
    """One served model: its name, base path, version policy and version labels."""

    name: str
    base_path: Path
    policy: str = "latest"  # latest | all | specific
    versions: tuple[int, ...] = ()  # for specific
    num_versions: int = 1  # for latest
    labels: dict[str, int] = field(default_factory=dict)

    def wanted(self, on_disk: list[int]) -> list[int]:
        if self.policy == "all":
            return on_disk
        if self.policy == "specific":
            return [v for v in on_disk if v in self.versions]
        return sorted(on_disk)[-self.num_versions :]


def read_model_config(path: str | Path) -> list[ModelSource]:
    """Sources from TF Serving's ``--model_config_file`` (text ``ModelServerConfig``).

    A relative ``base_path`` is taken relative to the config file's folder. An absolute one that
    does not exist here but names a folder beside the config file (``/models/shop`` in the
    ``models.config`` that export writes for Docker, which mounts that folder at ``/models``) is
    read from there, with a log line, so one generated config serves with both servers.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    try:
        config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    except (OSError, text_format.ParseError) as err:
        raise ConfigError(f"{path}: {err}") from None
    sources = []
    for model in config.model_config_list.config:
        if not model.name or not model.base_path:
            raise ConfigError(f"{path}: every model needs a name and a base_path")
        policy = model.model_version_policy.WhichOneof("policy_choice") or "latest"
        sources.append(
            ModelSource(
                name=model.name,
                base_path=_local_base_path(path, model.name, Path(model.base_path)),
                policy=policy,
                versions=tuple(model.model_version_policy.specific.versions),
                num_versions=model.model_version_policy.latest.num_versions or 1,
                labels=dict(model.version_labels),
            )
        )
    if not sources:
        raise ConfigError(f"{path}: no model in model_config_list")
    return sources


def _local_base_path(config: Path, name: str, base_path: Path) -> Path:
    beside = config.parent / base_path.name
    if base_path.is_absolute() and not base_path.exists() and beside.is_dir():
        log.info(
            "model %r: %s is not here; serving %s (the config's folder read as %s)",
            name,
            base_path,
            beside.resolve(),
            base_path.parent,
        )
        return beside.resolve()
    return (config.parent / base_path).resolve()


class LoadedVersion:
    """A SavedModel version ready to score, with one batcher per signature when batching is on."""

    def __init__(self, name: str, version: int, path: Path, batching: BatchingOptions | None):
        from tensorflow.core.protobuf import saved_model_pb2

        self.name, self.version, self.path = name, version, path
        saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
        self.signature_defs = {
            k: v for k, v in saved.meta_graphs[0].signature_def.items() if not k.startswith("__")
        }
        self.specs = {k: SignatureSpec.from_proto(k, v) for k, v in self.signature_defs.items()}
        self._module = tf.saved_model.load(str(path))
        self._functions = dict(self._module.signatures)
        self._batchers = {
            name: Batcher(
                lambda inputs, deadline, name=name: self._call_in_chunks(name, inputs, deadline), batching
            )
            for name in self._functions
            if batching
        }

    def spec(self, signature: str) -> SignatureSpec:
        if signature not in self.specs:
            raise not_found(
                f"model {self.name!r} version {self.version} has no signature {signature!r} "
                f"(signatures: {', '.join(sorted(self.specs))})"
            )
        return self.specs[signature]

    def predict(self, signature: str, inputs: Arrays, rows: int, deadline: Deadline = NO_DEADLINE) -> Arrays:
        """Scores checked inputs (see ``SignatureSpec.check``) through the batcher if there is one."""
        batcher = self._batchers.get(signature)
        if batcher:
            return batcher.submit(inputs, rows, deadline)
        return self._call_in_chunks(signature, inputs, deadline)

    def _call_in_chunks(self, signature: str, inputs: Arrays, deadline: Deadline) -> Arrays:
        """The model on ``CHUNK_ROWS`` rows at a time, so that a request past its deadline, or
        given up by its client, stops between two chunks (a running TensorFlow call cannot be)."""
        rows = len(next(iter(inputs.values())))
        if rows <= CHUNK_ROWS:
            return self._call(signature, inputs)
        parts = []
        for start in range(0, rows, CHUNK_ROWS):
            deadline.check()
            parts.append(self._call(signature, {k: v[start : start + CHUNK_ROWS] for k, v in inputs.items()}))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _call(self, signature: str, inputs: Arrays) -> Arrays:
        try:
            outputs = self._functions[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            message = getattr(err, "message", str(err)).strip().splitlines()[0]
            raise invalid(f"the model refused the inputs: {message}") from None
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self, max_requests: int = 100) -> int:
        """Replays the export's warm-up requests (as TF Serving does at load); returns how many."""
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / WARMUP_FILE
        if not path.exists():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).take(max_requests):
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
            spec = self.spec(request.model_spec.signature_name or "serving_default")
            inputs = {k: from_proto(k, v, spec.dtype(k)) for k, v in request.inputs.items()}
            spec.check(inputs, max_rows=1 << 30)
            self._call(spec.name, inputs)
            count += 1
        return count

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()


@dataclass
class VersionState:
    state: str  # LOADING | AVAILABLE | END
    error: str = ""
    stamp: float = 0.0  # directory mtime when it failed
    attempts: int = 0  # failed loads in a row
    retry_at: float = 0.0  # monotonic time of the next try of a failed version


class ModelManager:
    """Keeps each source's wanted versions loaded; resolves requests to a loaded version."""

    def __init__(self, sources: list[ModelSource], batching: BatchingOptions | None = None):
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"model names must be unique: {names}")
        self.sources = {s.name: s for s in sources}
        self.batching = batching
        self._loaded: dict[str, dict[int, LoadedVersion]] = {n: {} for n in names}
        self._states: dict[str, dict[int, VersionState]] = {n: {} for n in names}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        """One pass over every base path: load what is wanted, unload what is not."""
        with self._poll_lock:
            for source in self.sources.values():
                self._sync(source)

    def _sync(self, source: ModelSource) -> None:
        states = self._states[source.name]
        while True:
            wanted = source.wanted(self._usable_versions(source))
            missing = [v for v in wanted if v not in self._loaded[source.name]]
            if not missing:
                break
            self._load(source, missing[-1])
        with self._lock:
            retired = {v: m for v, m in self._loaded[source.name].items() if v not in wanted}
            for version in retired:
                del self._loaded[source.name][version]
                states[version] = VersionState("END")
        for version, model in retired.items():
            model.close()
            log.info("model %s: version %d unloaded", source.name, version)

    def _usable_versions(self, source: ModelSource) -> list[int]:
        if not source.base_path.is_dir():
            return []
        versions = []
        for path in source.base_path.iterdir():
            if not (path.name.isdigit() and path.is_dir()):
                continue
            failed = self._states[source.name].get(int(path.name))
            waiting = failed and failed.error and time.monotonic() < failed.retry_at
            if waiting and failed.stamp == path.stat().st_mtime:  # a changed folder is tried at once
                continue
            versions.append(int(path.name))
        return sorted(versions)

    def _load(self, source: ModelSource, version: int) -> None:
        path = source.base_path / str(version)
        stamp = path.stat().st_mtime
        before = self._states[source.name].get(version)
        attempts = before.attempts if before and before.error else 0
        if attempts:
            log.info("model %s: version %d, load attempt %d", source.name, version, attempts + 1)
        with self._lock:
            self._states[source.name][version] = VersionState("LOADING")
        try:
            model = LoadedVersion(source.name, version, path, self.batching)
            warmed = model.warm_up()
        except Exception as err:  # noqa: BLE001  (a broken version is reported, the server carries on)
            message = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''}"
            wait = min(RETRY_MAX_SECONDS, 2.0**attempts)  # 1, 2, 4 ... s: a copy still under way
            log.error(
                "model %s: version %d not loaded (retry in %gs): %s", source.name, version, wait, message
            )
            failed = VersionState("END", message, stamp, attempts + 1, time.monotonic() + wait)
            self._states[source.name][version] = failed
            return
        with self._lock:
            self._loaded[source.name][version] = model
            self._states[source.name][version] = VersionState("AVAILABLE")
        log.info("model %s: version %d serving (%d warm-up requests)", source.name, version, warmed)

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> LoadedVersion:
        """The loaded version a request names: a version, a label, or else the newest."""
        source = self.sources.get(name)
        if source is None:
            raise not_found(f"no model named {name!r} (models: {', '.join(sorted(self.sources))})")
        if label is not None:
            if label not in source.labels:
                raise not_found(f"model {name!r} has no version label {label!r}")
            version = source.labels[label]
        with self._lock:
            loaded = self._loaded[name]
            if version is None:
                if not loaded:
                    raise ServingError(grpc.StatusCode.UNAVAILABLE, f"model {name!r} has no version loaded")
                return loaded[max(loaded)]
            if version not in loaded:
                raise not_found(f"model {name!r} has no version {version} loaded")
            return loaded[version]

    def states(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> dict[int, VersionState]:
        """Each known version's state, or one version's (by number or label)."""
        if name not in self.sources:
            raise not_found(f"no model named {name!r}")
        if label is not None:
            version = self.resolve(name, label=label).version
        with self._lock:
            states = dict(sorted(self._states[name].items()))
        if version is None:
            return states
        if version not in states:
            raise not_found(f"model {name!r} has no version {version}")
        return {version: states[version]}

    def start(self, poll_seconds: float) -> None:
        """Polls the base paths every ``poll_seconds`` in a background thread (0: never)."""
        if poll_seconds <= 0:
            return

        def loop():
            while not self._stop.wait(poll_seconds):
                try:
                    self.poll()
                except Exception:  # noqa: BLE001  (a file-system hiccup must not stop the watching)
                    log.exception("polling the model base paths failed")

        self._thread = threading.Thread(target=loop, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        with self._poll_lock, self._lock:
            loaded = [m for versions in self._loaded.values() for m in versions.values()]
            for versions in self._loaded.values():
                versions.clear()
        for model in loaded:
            model.close()
