"""TF Serving's contract for an export, checked on every export and in the tests.

Stock TF Serving links TensorFlow's own ops and tensorflow-text's, nothing else, and cannot run
Python. An export passes when

* every op in its graphs (signatures and the functions they call) is registered by a process
  that imported only ``tensorflow`` and ``tensorflow_text``, and none is a Python callback
  (``PyFunc``, ``EagerPyFunc``, ``PyFuncStateless``);
* every signature has named inputs with a dtype and a shape, and named outputs;
* its warm-up file, if any, holds ``PredictionLog`` records whose inputs the signature takes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tfshop.errors import TfshopError

PYTHON_OPS = frozenset({"PyFunc", "EagerPyFunc", "PyFuncStateless"})

_CLASSIFY_OPS = """
import json, sys
import tensorflow as tf  # noqa: F401
from tensorflow.python.framework import op_def_registry
ops = json.loads(sys.stdin.read())
origin = {op: "tensorflow" for op in ops if op_def_registry.get(op) is not None}
import tensorflow_text  # noqa: F401
origin.update({op: "tensorflow_text" for op in ops if op not in origin and op_def_registry.get(op)})
print(json.dumps(origin))
"""


@dataclass
class ContractReport:
    """What an export uses: op name → ``tensorflow`` or ``tensorflow_text``, signature names."""

    ops: dict[str, str]
    signatures: list[str]
    warmup_requests: int


def check_contract(export_dir: str | Path, timeout: float = 300) -> ContractReport:
    """Raises ``TfshopError`` naming every breach of the contract; returns what was checked."""
    export_dir = Path(export_dir)
    graph = _meta_graph(export_dir)
    problems = _signature_problems(graph)
    ops = _ops(graph)
    origin = _classify_in_fresh_process(sorted(ops), timeout)
    unknown = sorted(op for op in ops if op not in origin)
    if unknown:
        problems.append(f"ops that stock TF Serving does not have: {', '.join(unknown)}")
    python_ops = sorted(ops & PYTHON_OPS)
    if python_ops:
        problems.append(f"Python callbacks that TF Serving cannot run: {', '.join(python_ops)}")
    warmup, warmup_problems = _warmup(export_dir, graph)
    problems += warmup_problems
    if problems:
        raise TfshopError(f"{export_dir} breaks TF Serving's contract: " + "; ".join(problems))
    return ContractReport(ops=origin, signatures=sorted(graph.signature_def), warmup_requests=warmup)


def _meta_graph(export_dir: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    path = export_dir / "saved_model.pb"
    if not path.is_file() or not (export_dir / "variables").is_dir():
        raise TfshopError(f"{export_dir}: not a SavedModel (saved_model.pb and variables/ expected)")
    saved = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    serving = [g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags]
    if not serving:
        raise TfshopError(f"{export_dir}: no meta graph tagged 'serve'")
    return serving[0]


def _signature_problems(graph) -> list[str]:
    from tensorflow.core.framework import types_pb2

    problems = []
    public = {k: v for k, v in graph.signature_def.items() if not k.startswith("__")}
    if "serving_default" not in public:
        problems.append("no serving_default signature")
    for name, signature in public.items():
        if not signature.outputs:
            problems.append(f"signature {name}: no outputs")
        for key, info in [*signature.inputs.items(), *signature.outputs.items()]:
            if not key or info.dtype == types_pb2.DT_INVALID or not info.HasField("tensor_shape"):
                problems.append(f"signature {name}: tensor {key!r} lacks a name, dtype or shape")
    return problems


def _ops(graph) -> set[str]:
    ops = {node.op for node in graph.graph_def.node}
    for function in graph.graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    called = {f.signature.name for f in graph.graph_def.library.function}
    return ops - called


def _classify_in_fresh_process(ops: list[str], timeout: float) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", _CLASSIFY_OPS],
        input=json.dumps(ops),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise TfshopError(f"listing TensorFlow's ops failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _warmup(export_dir: Path, graph) -> tuple[int, list[str]]:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = export_dir / "assets.extra" / "tf_serving_warmup_requests"
    if not path.exists():
        return 0, []
    problems, count = [], 0
    for record in tf.data.TFRecordDataset(str(path)):
        count += 1
        try:
            request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        except Exception as err:  # noqa: BLE001  (any parse failure is a breach)
            return count, [f"warm-up record {count} is not a PredictionLog: {err}"]
        signature = graph.signature_def.get(request.model_spec.signature_name or "serving_default")
        if signature is None:
            problems.append(f"warm-up record {count} names an unknown signature")
        elif set(request.inputs) != set(signature.inputs):
            problems.append(f"warm-up record {count}: inputs differ from the signature's")
    return count, problems
