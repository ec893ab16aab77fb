"""What the score and serve stages share: test rows as raw inputs, and served scores checked
against the trained model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfshop.data.input_config import InputConfig
from tfshop.errors import TfshopError
from tfshop.models.saved import load_keras


def sample_inputs(dataset: Path, names: list[str], split: str, rows: int) -> dict[str, np.ndarray]:
    """The first ``rows`` rows of a split as raw inputs ``names`` (e.g. a model's input names)."""
    from tfshop.data.pipeline import make_dataset

    features, _ = next(iter(make_dataset(dataset, split, InputConfig(batch_size=rows, deterministic=True))))
    return {name: features[name].numpy() for name in names}


def exported_and_expected(run, rows: int):
    """The run's export, ``rows`` test rows as raw inputs, and the trained model's scores of them."""
    export = Path(json.loads((run.dir / "export.json").read_text())["path"])
    model = load_keras(run.train_dir / "model")
    inputs = sample_inputs(run.dataset, model.input_names, "test", rows)
    return export, inputs, {k: v.numpy() for k, v in model(inputs, training=False).items()}


def row_labels(run, inputs: dict) -> list[str]:
    """Each input row's item id (by the schema's role), else its index."""
    from tfshop.data.schema import Schema

    item_id = Schema.load(run.dataset).name_of("item_id")
    rows = len(next(iter(inputs.values())))
    return [inputs[item_id][i].decode() if item_id in inputs else str(i) for i in range(rows)]


def check_same_scores(served: dict, expected: dict, source: str) -> float:
    """The largest difference between served and expected scores; above 1e-5 it is an error."""
    worst = max(float(np.max(np.abs(served[k] - expected[k]))) for k in expected)
    if worst > 1e-5:
        raise TfshopError(f"{source}: served scores differ from the trained model's by {worst:.2e}")
    return worst
