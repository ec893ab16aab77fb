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

import numpy as np
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


def item_embedding_from(model: keras.Model, schema, source: str | Path) -> int:
    """Starts the item id embedding from a next-item model's item vectors; returns the rows set.

    ``source``: a next-item run's ``pretrain`` or ``train`` directory (or its ``model/``). Items
    are matched by id; items the next-item model never saw keep their fresh rows. A wider vector
    is reduced to the embedding's width by its principal components; the vectors are scaled to
    the fresh rows' spread, so training starts at the usual scale.
    """
    from tfshop.models.sequential import load_next_item

    path = Path(source)
    path = path / "model" if (path / "model" / "config.json").is_file() else path
    if not (path / "config.json").is_file() or not (path / "item_ids.txt").is_file():
        raise ConfigError(
            f"model.item_embedding_from: {source} is not a next-item run's pretrain or train directory"
        )
    vectors = load_next_item(path).item_vectors().numpy()
    item_ids = (path / "item_ids.txt").read_text(encoding="utf-8").splitlines()
    feature = schema.feature(schema.name_of("item_id"))
    names = {layer.name for layer in model.layers}
    stem = Path(feature.vocab).stem if feature.vocab else ""
    if f"{stem}_lookup" not in names or f"{stem}_embedding" not in names:
        raise ConfigError(
            f"model.item_embedding_from: the model has no embedding of {feature.name} over a vocabulary"
        )
    lookup, embedding = model.get_layer(f"{stem}_lookup"), model.get_layer(f"{stem}_embedding")
    table = embedding.embeddings.numpy()
    vectors = _principal(vectors - vectors.mean(axis=0), table.shape[1])
    vectors *= table.std() / max(float(vectors.std()), 1e-12)
    row_of = {token: row for row, token in enumerate(lookup.get_vocabulary())}
    matched = [(row_of[item], i) for i, item in enumerate(item_ids) if item in row_of]
    if not matched:
        raise ConfigError(f"model.item_embedding_from: no item of {source} is in this dataset's vocabulary")
    rows, found = (np.array(column) for column in zip(*matched))
    table[rows] = vectors[found]
    embedding.embeddings.assign(table)
    log.info("item embedding: %d of %d rows from %s", len(rows), len(row_of), path)
    return len(rows)


def _principal(vectors, width: int):
    """``vectors`` projected on their first ``width`` principal axes (unchanged if not wider)."""
    if vectors.shape[1] <= width:
        return np.pad(vectors, [(0, 0), (0, width - vectors.shape[1])])
    _, _, axes = np.linalg.svd(vectors, full_matrices=False)
    return vectors @ axes[:width].T
