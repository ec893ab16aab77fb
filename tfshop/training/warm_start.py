"""``train.warm_start``: a new training continues from an earlier one's learnt weights.

Every trainable weight of the new model whose layer exists in the earlier model, with as many
weights of the same shapes, starts from the earlier value; the rest start fresh and are listed in
the log. Weights derived from the data or a pretrained encoder (lookup tables, text caches, frozen transformer
blocks) are rebuilt, not copied. Prepare the new window with ``prepare.vocab_from`` set to the
earlier dataset so that id embeddings keep their rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import tf_keras as keras

from tfshop.errors import ConfigError
from tfshop.models.saved import load_keras

log = logging.getLogger(__name__)


def warm_start(model: keras.Model, earlier: str | Path) -> dict[str, int]:
    """Copies matching trainable weights from the model saved at ``earlier``; returns counts."""
    path = Path(earlier)
    if (path / "model" / "saved_model.pb").is_file():  # a train directory
        path = path / "model"
    if not (path / "saved_model.pb").is_file():
        raise ConfigError(
            f"train.warm_start: {earlier} is not a trained model (train/model) or train directory"
        )
    previous = {layer.name: layer for layer in load_keras(path).layers}
    _check_same_vocabularies(model, previous, earlier)
    copied, fresh = 0, []
    for layer in model.layers:
        # weights pair up by position: names carry per-process counters (dense_56 vs dense_3)
        old = previous[layer.name].trainable_weights if layer.name in previous else []
        same = len(old) == len(layer.trainable_weights)
        for i, weight in enumerate(layer.trainable_weights):
            if same and old[i].shape == weight.shape:
                weight.assign(old[i].numpy())
                copied += 1
            else:
                fresh.append(weight.name)
    if not copied:
        raise ConfigError(f"train.warm_start: no weight of {earlier} fits this model (another model config?)")
    log.info("warm start from %s: %d weights copied, %d fresh %s", path, copied, len(fresh), fresh[:10])
    return {"copied": copied, "fresh": len(fresh)}


def _check_same_vocabularies(model: keras.Model, previous: dict, earlier) -> None:
    """Embedding rows are only meaningful under the vocabulary they were learnt with."""
    for layer in model.layers:
        old = previous.get(layer.name)
        lookups = isinstance(layer, keras.layers.StringLookup) and isinstance(old, keras.layers.StringLookup)
        if lookups and layer.get_vocabulary() != old.get_vocabulary():
            raise ConfigError(
                f"train.warm_start: {layer.name} has another vocabulary than in {earlier}; prepare the "
                "new data with prepare.vocab_from set to the earlier dataset"
            )
