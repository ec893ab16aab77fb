"""Scoring an export in a fresh Python process that imports only TensorFlow and TF Text.

This is what TF Serving has: the stock ops and tensorflow-text's; no tfshop, no TFRS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tfshop.errors import TfshopError

_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (its ops, as stock TF Serving links them)

export, inputs, outputs, signature_name = sys.argv[1:5]
data = np.load(inputs)
signature = tf.saved_model.load(export).signatures[signature_name]
result = signature(**{name: tf.constant(data[name]) for name in data.files})
leaked = sorted(m for m in ("tfshop", "tensorflow_recommenders") if m in sys.modules)
if leaked:
    sys.exit(f"the export needed {leaked} to load")
arrays = {name: value.numpy() for name, value in result.items()}
np.savez(outputs, **{k: v.astype(bytes) if v.dtype == object else v for k, v in arrays.items()})
"""


def score_in_fresh_process(
    export_dir: str | Path,
    inputs: dict[str, np.ndarray],
    timeout: float = 300,
    signature: str = "serving_default",
) -> dict[str, np.ndarray]:
    """Runs ``signature`` of ``export_dir`` on ``inputs`` in a new interpreter."""
    with tempfile.TemporaryDirectory() as scratch:
        request, response = Path(scratch) / "inputs.npz", Path(scratch) / "outputs.npz"
        np.savez(request, **{k: _plain(v) for k, v in inputs.items()})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_USE_LEGACY_KERAS", "PYTHONPATH"))}
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _SCRIPT,
                str(Path(export_dir).resolve()),
                str(request),
                str(response),
                signature,
            ],
            cwd=scratch,  # elsewhere, so that a path the export should not depend on cannot resolve
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines() or [f"exit status {result.returncode}"]
            cause = next((line for line in reversed(lines) if "Error" in line), lines[-1])
            raise TfshopError(f"{export_dir}: scoring in a fresh process failed: {cause.strip()}")
        with np.load(response) as data:
            return {name: data[name] for name in data.files}


def _plain(values: np.ndarray) -> np.ndarray:
    """Object arrays of bytes (as TensorFlow returns strings) as fixed-width bytes for npz."""
    values = np.asarray(values)
    return values.astype(bytes) if values.dtype == object else values
