"""The two retrieval towers inside the multi-task model.

The **item tower** reads the catalogue's fields of the candidate item (id, category, brand,
price, title, ...); the **query tower** reads everything else a request knows — the user, their
profile, the context, the search query's text — and the behaviour history through a causal
transformer (:class:`HistoryState`). Both share the model's embedding tables and end in unit
vectors (layers ``query_vector`` and ``item_vector``; the projection, the normalisation and the
stop-gradient are configurable, ``model.retrieval``). Their dot product is one more feature of
the ranking block (``retrieval.match_feature``), and the schema's ``retrieval`` task trains
them with an in-batch softmax (:class:`tfshop.layers.retrieval.InBatchScores`). At export the
item tower runs over the whole catalogue once and the query tower alone answers ``retrieve``
requests.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import tensorflow as tf
import tf_keras as keras

from tfshop.data import catalogue
from tfshop.data.catalogue import catalogue_inputs
from tfshop.data.schema import Schema
from tfshop.errors import ConfigError, DataError
from tfshop.layers.features import StopGradient
from tfshop.layers.sequence import HistoryState
from tfshop.models.config import ModelConfig

QUERY, ITEM = "query_vector", "item_vector"


def tower_inputs(input_names: list[str], data_dir: Path, config: ModelConfig) -> tuple[list[str], list[str]]:
    """(query tower inputs, item tower inputs): the item tower takes the catalogue's columns."""
    path = Path(data_dir) / catalogue.FILE
    if not path.exists():
        raise DataError(f"{path}: the retrieval task needs the item catalogue (prepare writes it)")
    columns = set(pq.read_schema(path).names)
    items = [n for n in input_names if n in columns]
    queries = [n for n in input_names if n not in columns and n not in config.retrieval.query_exclude]
    item_id = Schema.load(data_dir).name_of("item_id")
    if item_id not in items:
        raise ConfigError(
            f"{path}: the retrieval towers need the item id ({item_id or 'no feature has role item_id'}) "
            "as a model input (excluded?)"
        )
    return queries, items


def build_towers(flat: dict, history: tuple | None, query_names: list[str], item_names: list[str], config):
    """(query vectors, item vectors) from the per-feature vectors ``flat`` (``(B, d_f)`` each) and
    ``history``: ``(event vectors, ids)`` of the behaviour history, or None.

    By default the towers read those shared vectors but do not train them (no gradient flows
    back): the retrieval loss would otherwise pull the embeddings and text vectors that the
    ranking and text heads depend on (it cost the quality shop's text heads their accuracy).
    ``retrieval.trains_embeddings`` lets it train them, as a two-tower model of ids alone needs.
    """

    def read(x, name):
        return x if config.retrieval.trains_embeddings else StopGradient(name=f"{name}_for_towers")(x)

    shared = {n: read(flat[n], n) for n in [*query_names, *item_names] if n in flat}
    query_parts = [shared[n] for n in query_names if n in shared]
    if history is not None:
        state = HistoryState(
            history[0].shape[1],
            config.retrieval.history_blocks,
            dropout=config.dropout,
            name="history_state",
        )([read(history[0], "history"), history[1]])
        query_parts.append(state)
    query = _tower(query_parts, "query", config)
    item = _tower([shared[n] for n in item_names if n in shared], "item", config)
    if query.shape[-1] != item.shape[-1]:
        raise ConfigError(
            f"model.retrieval: the query tower ends in {query.shape[-1]} numbers and the item tower in "
            f"{item.shape[-1]}: without retrieval.projection both sides need the same width"
        )
    return query, item


def _tower(parts: list, side: str, config: ModelConfig):
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"{side}_features")(parts)
    for i, units in enumerate(config.tower_units):
        x = keras.layers.Dense(units, activation="relu", name=f"{side}_tower_{i}")(x)
    if config.retrieval.projection:
        x = keras.layers.Dense(config.retrieval.dim, name=f"{side}_projection")(x)
    if config.retrieval.normalize:
        return keras.layers.UnitNormalization(name=f"{side}_vector")(x)
    return keras.layers.Identity(name=f"{side}_vector")(x)


def query_tower_and_item_vectors(model: keras.Model, schema, catalogue, query_names, item_names):
    """(the query tower, the item tower's vectors of every catalogue row as a numpy array)."""
    query_tower, item_tower = tower_models(model, query_names, item_names)
    rows = catalogue_inputs(catalogue, schema, item_names)
    vectors = item_tower.predict({n: tf.constant(v) for n, v in rows.items()}, batch_size=1024, verbose=0)
    return query_tower, vectors


def tower_models(model: keras.Model, query_names: list[str], item_names: list[str]):
    """(query tower, item tower) as Keras models over their own raw inputs, sharing ``model``'s layers."""
    return (
        keras.Model(
            {n: model.input[n] for n in query_names}, model.get_layer(QUERY).output, name="query_tower"
        ),
        keras.Model({n: model.input[n] for n in item_names}, model.get_layer(ITEM).output, name="item_tower"),
    )
