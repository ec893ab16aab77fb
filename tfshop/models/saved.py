"""Reading back a Keras model that ``tfshop train`` saved."""

from __future__ import annotations

from pathlib import Path

import tf_keras as keras

import tfshop.models.multitask  # noqa: F401  (registers tfshop's layers for loading)
from tfshop.errors import DataError


def load_keras(path: str | Path) -> keras.Model:
    """The model saved at ``path`` (a ``train/model`` directory), weights and all."""
    if not (Path(path) / "saved_model.pb").is_file():
        raise DataError(f"{path}: no trained model here (run the train stage first)")
    model = keras.models.load_model(str(path), compile=False)
    # Restores again now that every layer is built: sublayers built lazily at their first call
    # (multi-head attention's) miss the loader's restore of a model saved without traces.
    model.load_weights(str(Path(path) / "variables" / "variables")).assert_existing_objects_matched()
    return model
