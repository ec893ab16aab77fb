"""Retrieval quality of the multi-task model's towers: full-catalogue ranking of clicked items.

Every clicked row of the split is a query (its user, context, query text and history); its
clicked item is ranked against the **whole catalogue** by the towers' dot product (ties count
against it). Reported next to the prior: popularity, every item ranked by its training
impressions. Clicked items outside the catalogue are counted and left out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.data.catalogue import catalogue_inputs, read_catalogue
from tfshop.data.pipeline import InputConfig, make_dataset
from tfshop.data.schema import Schema, Task
from tfshop.evaluation.ranking import ranking_metrics, target_ranks
from tfshop.models.config import ModelConfig
from tfshop.models.towers import tower_inputs, tower_models

log = logging.getLogger(__name__)


def retrieval_report(
    model: keras.Model,
    data_dir: Path,
    schema: Schema,
    task: Task,
    config: ModelConfig,
    split: str = "test",
    ks: tuple[int, ...] = (10, 100),
) -> dict:
    """``{"multitask": metrics, "prior": metrics}``; metrics as in ``ranking_metrics``."""
    query_names, item_names = tower_inputs(model.input_names, data_dir, config)
    query_tower, item_tower = tower_models(model, query_names, item_names)
    catalogue = read_catalogue(data_dir)
    rows = catalogue_inputs(catalogue, schema, item_names)
    items = item_tower.predict({n: tf.constant(v) for n, v in rows.items()}, batch_size=1024, verbose=0)
    position = {item: i for i, item in enumerate(catalogue["item_id"])}
    popularity = catalogue["train_impressions"].to_numpy(np.float64)
    ranks, popular, unknown = [], [], 0
    for features, labels in make_dataset(
        data_dir, split, InputConfig(batch_size=4096, deterministic=True), schema
    ):
        clicked = labels[task.label].numpy() > 0
        targets = np.array([position.get(i.decode(), -1) for i in features["item_id"].numpy()[clicked]])
        known = targets >= 0
        unknown += int((~known).sum())
        if not known.any():
            continue
        keep = np.flatnonzero(clicked)[known]
        queries = query_tower({n: tf.gather(features[n], keep) for n in query_names}, training=False).numpy()
        ranks.append(target_ranks(queries @ items.T, targets[known]))
        popular.append(
            target_ranks(np.broadcast_to(popularity, (len(keep), len(popularity))), targets[known])
        )
    if unknown:
        log.warning("retrieval: %d clicked items of %s are not in the catalogue; left out", unknown, split)
    if not ranks:
        return {}
    return {
        "multitask": ranking_metrics(np.concatenate(ranks), ks),
        "prior": ranking_metrics(np.concatenate(popular), ks),
    }
