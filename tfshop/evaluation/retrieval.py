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

from tfshop.data.catalogue import read_catalogue
from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema, Task
from tfshop.evaluation.ranking import ranking_metrics, target_ranks
from tfshop.models.config import ModelConfig
from tfshop.models.towers import query_tower_and_item_vectors, tower_inputs

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
    catalogue = read_catalogue(data_dir)
    query_tower, items = query_tower_and_item_vectors(model, schema, catalogue, query_names, item_names)
    item_id = schema.name_of("item_id")
    position = {item: i for i, item in enumerate(catalogue[item_id])}
    popularity_rank = _popularity_ranks(catalogue["train_impressions"].to_numpy(np.float64))
    ranks, popular, unknown = [], [], 0
    for features, labels in make_dataset(
        data_dir, split, InputConfig(batch_size=4096, deterministic=True), schema
    ):
        clicked = labels[task.label].numpy() > 0
        targets = np.array([position.get(i.decode(), -1) for i in features[item_id].numpy()[clicked]])
        known = targets >= 0
        unknown += int((~known).sum())
        if not known.any():
            continue
        keep = np.flatnonzero(clicked)[known]
        queries = query_tower({n: tf.gather(features[n], keep) for n in query_names}, training=False).numpy()
        ranks.append(target_ranks(queries @ items.T, targets[known]))
        popular.append(popularity_rank[targets[known]])
    if unknown:
        log.warning("retrieval: %d clicked items of %s are not in the catalogue; left out", unknown, split)
    if not ranks:
        return {}
    return {
        "multitask": ranking_metrics(np.concatenate(ranks), ks),
        "prior": ranking_metrics(np.concatenate(popular), ks),
    }


def _popularity_ranks(popularity: np.ndarray) -> np.ndarray:
    """Each item's rank when every item is ranked by ``popularity``: the number of other items
    at least as popular (ties count against it, as in ``target_ranks``)."""
    ordered = np.sort(popularity)
    return len(popularity) - np.searchsorted(ordered, popularity, side="left") - 1
