"""The next-item model as a TF Serving SavedModel: raw item-id strings in, items out.

Signatures (plain TensorFlow ops; the item vocabulary is a hash table in the graph):

* ``recommend``: ``history`` (``(batch, n)`` item ids, most recent last, ``""`` as padding
  anywhere; any ``n``, the newest ``max_length`` read) → ``item_ids`` and ``scores``,
  ``(batch, k)`` with the export's ``k``;
* ``recommend_k``: the same with ``k`` (``(batch,)`` int32): the batch gets the largest ``k``
  asked, at most the catalogue;
* ``serving_default``: ``history`` and candidate ``items`` (``(batch, m)``) → their ``scores``.

Unknown item ids in a history are ignored (out of vocabulary); a history with no known item is
scored by the items' training popularity. Unless ``allow_repeats``, the items of the history
score :data:`EXCLUDED` (the lowest float32) and so come last; an unknown candidate scores it too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfshop.export.saved_model import save_version
from tfshop.models.sequential import NextItemModel

EXCLUDED = float(np.finfo(np.float32).min)


class RecommendModule(tf.Module):
    """Wraps a :class:`NextItemModel` and its item vocabulary with the serving signatures."""

    def __init__(self, model: NextItemModel, item_ids: list[str], k: int = 10, allow_repeats: bool = False):
        super().__init__()
        if len(item_ids) != model.num_items:
            raise ValueError(f"{len(item_ids)} item ids for a model of {model.num_items} items")
        if k <= 0:
            raise ValueError(f"recommend k: {k} must be positive")
        self.model, self.k, self.allow_repeats = model, min(k, model.num_items), allow_repeats
        self.vocabulary = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(item_ids), tf.range(1, len(item_ids) + 1, dtype=tf.int64)
            ),
            default_value=0,
        )
        self.item_ids = tf.Variable(item_ids, trainable=False, name="item_ids")
        self.popularity = tf.Variable(model.popularity, trainable=False, name="popularity")
        history = tf.TensorSpec([None, None], tf.string, name="history")
        self.recommend = tf.function(self._recommend, input_signature=[history])
        self.recommend_k = tf.function(
            self._recommend_k, input_signature=[history, tf.TensorSpec([None], tf.int32, name="k")]
        )
        self.score = tf.function(
            self._score, input_signature=[history, tf.TensorSpec([None, None], tf.string, name="items")]
        )

    def signatures(self) -> dict:
        return {
            "serving_default": self.score.get_concrete_function(),
            "recommend": self.recommend.get_concrete_function(),
            "recommend_k": self.recommend_k.get_concrete_function(),
        }

    def _ids(self, strings):
        return tf.cast(self.vocabulary.lookup(strings), tf.int32)

    def _user_vectors(self, history_ids):
        """States after each history's newest known item; ``(B, d)``, and which histories are empty."""
        known = tf.cast(history_ids > 0, tf.int32)
        order = tf.argsort(known, axis=1, stable=True)  # padding and unknown ids to the left
        ids = tf.gather(history_ids, order, batch_dims=1)[:, -self.model.config.max_length :]
        states = self.model({"items": ids}, training=False)[:, -1]
        return states, tf.reduce_all(ids == 0, axis=1)

    def _all_scores(self, history_ids):
        states, empty = self._user_vectors(history_ids)
        scores = tf.matmul(states, self.model.item_vectors(), transpose_b=True)
        scores = tf.where(empty[:, None], self.popularity[None], scores)
        if self.allow_repeats:
            return scores
        seen = tf.where(history_ids > 0)
        columns = tf.cast(tf.gather_nd(history_ids, seen) - 1, tf.int64)
        at = tf.stack([seen[:, 0], columns], axis=1)
        return tf.tensor_scatter_nd_update(scores, at, tf.fill(tf.shape(columns), EXCLUDED))

    def _recommend(self, history):
        return self._recommend_k(history, tf.fill(tf.shape(history)[:1], self.k))

    def _recommend_k(self, history, k):
        k = tf.clip_by_value(tf.reduce_max(tf.concat([k, [1]], 0)), 1, self.model.num_items)
        top = tf.math.top_k(self._all_scores(self._ids(history)), k=k)
        return {"item_ids": tf.gather(self.item_ids, top.indices), "scores": top.values}

    def _score(self, history, items):
        scores = self._all_scores(self._ids(history))
        candidates = self._ids(items)
        picked = tf.gather(scores, tf.maximum(candidates - 1, 0), batch_dims=1)
        return {"scores": tf.where(candidates > 0, picked, EXCLUDED)}


def export_next_item(
    model: NextItemModel,
    item_ids: list[str],
    base: str | Path,
    name: str,
    warmup: dict[str, np.ndarray],
    k: int = 10,
    allow_repeats: bool = False,
) -> Path:
    """Writes the next version of ``<base>/<name>``; returns its directory."""
    module = RecommendModule(model, item_ids, k, allow_repeats)
    about = {"num_items": model.num_items, "max_length": model.config.max_length, "k": module.k}
    about["allow_repeats"] = allow_repeats
    assets = {"next_item.json": json.dumps(about, indent=1) + "\n"}
    return save_version(module, module.signatures(), base, name, warmup=warmup, assets=assets)
