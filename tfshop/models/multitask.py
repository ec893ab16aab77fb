"""The multi-task model: raw inputs → feature towers → multi-task block → one named head per task.

Built as a Keras functional model from the schema, the dataset's vocabularies and statistics,
and a :class:`ModelConfig`. All lookups happen inside the graph, so the model takes the raw
values the input pipeline yields and that a serving client sends.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import tf_keras as keras

from tfshop.data.catalogue import catalogue_inputs, read_catalogue
from tfshop.data.pipeline import TF_DTYPES
from tfshop.data.schema import Feature, Schema, Task
from tfshop.errors import ConfigError
from tfshop.layers.attention import TargetAttention
from tfshop.layers.experts import MultiGateMixtureOfExperts, ProgressiveLayeredExtraction, SharedBottom
from tfshop.layers.features import Carry, MaskedMean, NotPadding, NumericEmbedding
from tfshop.layers.retrieval import CatalogueSample, InBatchScores
from tfshop.layers.text import HashedBagOfWords, pretrained_sentence_encoder
from tfshop.models.config import ModelConfig
from tfshop.models.towers import ITEM, QUERY, build_towers, tower_inputs, tower_models
from tfshop.tasks import task_type

log = logging.getLogger(__name__)


def model_tasks(schema: Schema, config: ModelConfig) -> list[Task]:
    """The schema tasks this model trains, in schema order."""
    known = {t.name: t for t in schema.tasks}
    for name in config.tasks:
        if name not in known:
            raise ConfigError(f"model.tasks: no task {name!r} in the schema (tasks: {', '.join(known)})")
    return [t for t in schema.tasks if not config.tasks or t.name in config.tasks]


def esmm_pair(tasks: list[Task], config: ModelConfig) -> tuple[str, str] | None:
    """(ctr task, cvr task) when the model should output their product ``ctcvr``."""
    names = {t.name for t in tasks}
    for task in tasks:
        if config.esmm and task.type == "binary" and task.parent in names:
            return task.parent, task.name
    return None


def output_names(schema: Schema, config: ModelConfig) -> list[str]:
    """The model's named outputs (a retrieval task has none: it trains the towers)."""
    tasks = model_tasks(schema, config)
    heads = [t.name for t in tasks if task_type(t.type).has_head]
    return heads + (["ctcvr"] if esmm_pair(tasks, config) else [])


def retrieval_task(tasks: list[Task]) -> Task | None:
    return next((t for t in tasks if not task_type(t.type).has_head), None)


class _Encoders:
    """Creates, once per vocabulary, the lookup and embedding layers features share."""

    def __init__(self, data_dir: Path, dim: int, l2: float):
        self.data_dir, self.dim = data_dir, dim
        self.regularizer = keras.regularizers.L2(l2) if l2 else None
        self.layers: dict[str, tuple[keras.layers.Layer, keras.layers.Layer]] = {}

    def ids_and_embedding(self, feature: Feature):
        key = feature.vocab or f"hash:{feature.name}"
        if key not in self.layers:
            name = Path(key).stem if feature.vocab else feature.name
            if feature.hash_buckets:
                lookup = keras.layers.Hashing(feature.hash_buckets, name=f"{name}_hash")
                size = feature.hash_buckets
            else:
                lookup = keras.layers.StringLookup(
                    vocabulary=self._vocabulary(feature),
                    mask_token="",
                    num_oov_indices=feature.num_oov_buckets,
                    name=f"{name}_lookup",
                )
                size = feature.vocab_size + feature.num_oov_buckets + 1
            embedding = keras.layers.Embedding(
                size, self.dim, activity_regularizer=self.regularizer, name=f"{name}_embedding"
            )
            self.layers[key] = (lookup, embedding)
        return self.layers[key]

    def _vocabulary(self, feature: Feature) -> list[str]:
        """The tokens, held in the graph (not as a file path) so that every export is self-contained."""
        text = (self.data_dir / feature.vocab).read_text(encoding="utf-8")
        if not text:
            raise ConfigError(
                f"feature {feature.name!r} has an empty vocabulary (no value in the training split): "
                "leave it out with model.exclude_features"
            )
        return text.removesuffix("\n").split("\n")


def build_model(data_dir: str | Path, config: ModelConfig, schema: Schema | None = None) -> keras.Model:
    """The functional multi-task model for the dataset at ``data_dir``."""
    data_dir = Path(data_dir)
    schema = schema or Schema.load(data_dir)
    stats = json.loads((data_dir / "stats.json").read_text())
    label_stats = stats.get("labels", {})
    stats = stats["numeric"]
    tasks = model_tasks(schema, config)
    if not tasks:
        raise ConfigError("model: no tasks to train (the schema has none, or model.tasks selects none)")
    features = config.input_features(schema)
    inputs = {
        f.name: keras.Input(
            shape=(f.max_len,) if f.kind == "sequence" else (), dtype=TF_DTYPES[f.dtype], name=f.name
        )
        for f in features
    }
    encoders = _Encoders(data_dir, config.embedding_dim, config.embedding_l2)
    text = _text_encoder(data_dir, [f for f in features if f.kind == "text"], config)
    vectors, ids, semantic = {}, {}, {}
    for f in features:
        x = inputs[f.name]
        if f.kind in ("id", "categorical", "sequence"):
            lookup, embedding = encoders.ids_and_embedding(f)
            ids[f.name] = lookup(x)
            vectors[f.name] = embedding(ids[f.name])
        elif f.kind == "numeric":
            s = stats.get(f.name, {})
            vectors[f.name] = NumericEmbedding(
                s.get("mean", 0.0),
                s.get("std", 1.0),
                s.get("quantiles", []),
                config.embedding_dim,
                low=s.get("min"),
                high=s.get("max"),
                name=f"{f.name}_numeric",
            )(x)
        elif f.kind == "text" and isinstance(text, tuple):
            semantic[f.name] = text[0](x)
            vectors[f.name] = text[1](semantic[f.name])
        elif f.kind == "text":
            vectors[f.name] = text(x)
    history_of = _histories(schema, vectors)
    flat = {f.name: vectors[f.name] for f in features if f.kind != "sequence"}
    flat |= {
        f.name: MaskedMean(name=f"{f.name}_pool")([vectors[f.name], ids[f.name]])
        for f in features
        if f.kind == "sequence" and f.name not in history_of
    }
    parts = list(flat.values())
    events = _history_events(vectors, ids, history_of)
    history = _history(vectors, events, history_of, config)
    if history is not None:
        parts.append(history[0])
    parts += _matches(vectors, history, semantic, schema.name_of("query"), schema.name_of("item_title"))
    if retrieval_task(tasks):
        query_names, item_names = tower_inputs(list(inputs), data_dir, config)
        query, item = build_towers(flat, events, query_names, item_names, config)
        if config.retrieval.match_feature:
            parts.append(keras.layers.Dot(axes=1, name="query_item_match")([query, item]))
    shared = keras.layers.Concatenate(name="features")(parts)
    if retrieval_task(tasks) and not config.retrieval.match_feature:
        shared = Carry(name="features_and_towers")([shared, query, item])
    if config.dropout:
        shared = keras.layers.Dropout(config.dropout, name="feature_dropout")(shared)
    tasks = [t for t in tasks if task_type(t.type).has_head]  # retrieval trains the towers instead
    block_tasks = [t for t in tasks if not t.inputs]
    per_task = _block(config, len(block_tasks))(shared) if block_tasks else []
    towers = dict(zip([t.name for t in block_tasks], per_task))
    outputs = {}
    for task in tasks:
        if task.inputs:
            outputs[task.name] = _text_head(task, inputs, vectors, semantic or vectors, config)
            continue
        x = towers[task.name]
        for i, units in enumerate(config.tower_units):
            x = keras.layers.Dense(units, activation="relu", name=f"{task.name}_tower_{i}")(x)
        label_mean = label_stats.get(task.label, {}).get("mean", 0.0)
        outputs[task.name] = task_type(task.type).head(task, x, label_mean)
    pair = esmm_pair(tasks, config)
    if pair:
        outputs["ctcvr"] = keras.layers.Multiply(name="ctcvr")([outputs[pair[0]], outputs[pair[1]]])
    return keras.Model(inputs, outputs, name=f"tfshop_{config.block}")


def with_retrieval_scores(
    model: keras.Model, data_dir: Path, schema: Schema, tasks: list[Task], config: ModelConfig
):
    """``model`` plus the retrieval task's output (in-batch logits of its towers, and of
    ``config.retrieval.extra_negatives`` uniform catalogue items) for training; ``model`` itself
    without a retrieval task."""
    task = retrieval_task(tasks)
    if task is None:
        return model
    items, item_id = read_catalogue(data_dir), schema.name_of("item_id")
    ids = model.input[item_id]
    candidates = [model.get_layer(QUERY).output, model.get_layer(ITEM).output, ids]
    if config.retrieval.extra_negatives:
        query_names, item_names = tower_inputs(model.input_names, data_dir, config)
        item_tower = tower_models(model, query_names, item_names)[1]
        drawn = CatalogueSample(
            catalogue_inputs(items, schema, item_names),
            config.retrieval.extra_negatives,
            name="catalogue_sample",
        )(ids)
        candidates += [item_tower(drawn), drawn[item_id]]
    scores = InBatchScores(
        dict(zip(items[item_id], items["train_impressions"])),
        config.retrieval.temperature,
        catalogue_size=len(items),
        popularity_correction=config.retrieval.popularity_correction,
        name=task.name,
    )(candidates)
    return keras.Model(model.input, {**model.output, task.name: scores}, name=f"{model.name}_training")


def _text_encoder(data_dir: Path, text_features: list[Feature], config: ModelConfig):
    """One text encoder shared by every text feature, so queries and titles live in one space.

    The hashed bag of words, or (``config.text.encoder``) the pretrained sentence encoder and a
    trainable projection to ``text_dim``: frozen with the texts of the training split and of the
    catalogue cached, or fine-tuned (``text_encoder_mode``).
    """
    if not config.text.encoder or not text_features:
        return HashedBagOfWords(config.text.buckets, config.text.dim, name="words")
    if config.text.encoder_mode == "frozen":
        texts = _cached_texts(data_dir, text_features)
        log.info("encoding %d distinct training and catalogue texts with the pretrained encoder", len(texts))
        encoder = _pretrained(config, "sentence_encoder", cached_texts=texts)
    else:
        encoder = _pretrained(config, "sentence_encoder", _trainable_layers(config))
    return encoder, keras.layers.Dense(config.text.dim, name="text_projection")


def _pretrained(config: ModelConfig, name: str, trainable_layers: int = 0, **kwargs):
    """The configured pretrained encoder; its folder's or settings' problems are config errors."""
    folder = None if config.text.encoder == "default" else config.text.encoder
    try:
        return pretrained_sentence_encoder(
            folder, config.text.max_length, trainable_layers, name=name, **kwargs
        )
    except ValueError as err:
        raise ConfigError(f"model.text_encoder: {err}") from None


def _trainable_layers(config: ModelConfig) -> int:
    return {"frozen": 0, "finetune_top_n": config.text.finetune_layers, "full": -1}[config.text.encoder_mode]


def _cached_texts(data_dir: Path, text_features: list[Feature]) -> list[str]:
    """Every text of the training split and of the catalogue (whose items the retrieval task's
    extra negatives, evaluation and export run through the item tower)."""
    from tfshop.data.input_config import InputConfig
    from tfshop.data.pipeline import make_dataset

    texts = set()
    for batch, _ in make_dataset(data_dir, "train", InputConfig(batch_size=8192, deterministic=True)):
        for f in text_features:
            texts.update(t.decode("utf-8", "replace") for t in batch[f.name].numpy().tolist())
    items = read_catalogue(data_dir)
    for f in text_features:
        if items is not None and f.name in items:
            texts.update(items[f.name].astype(str))
    return sorted(texts)


def _text_head(task: Task, inputs: dict, vectors: dict, rich: dict, config: ModelConfig):
    """The head of a text task, reading only its text inputs.

    A binary task on a pair of texts (query–title relevance) scores the cosine of their
    ``vectors`` (the model's trainable text vectors: a bi-encoder) or, with ``pair_encoder:
    cross``, one pass of the pretrained encoder over the pair; any other text task is an MLP
    over the texts' ``rich`` vectors (the pretrained encoder's own, where there is one).
    """
    missing = [name for name in task.inputs if name not in vectors]
    if missing:
        raise ConfigError(f"tasks.{task.name}.inputs: {missing[0]!r} is not a model input (excluded?)")
    if task.type == "binary" and len(task.inputs) == 2:
        first, second = task.inputs
        if config.text.pair_encoder == "cross":
            cross = _pretrained(config, f"{task.name}_cross_encoder", _trainable_layers(config))
            x = cross((inputs[first], inputs[second]))
        else:
            x = keras.layers.Dot(axes=1, normalize=True, name=f"{task.name}_cosine")(
                [vectors[first], vectors[second]]
            )
        return task_type(task.type).head(task, x)
    parts = [rich[name] for name in task.inputs]
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"{task.name}_text")(parts)
    for i, units in enumerate(config.tower_units):
        x = keras.layers.Dense(units, activation="relu", name=f"{task.name}_tower_{i}")(x)
    return task_type(task.type).head(task, x)


def _matches(vectors, history, semantic, query: str | None, title: str | None) -> list:
    """Explicit cosine interactions: query vs title text, pooled history vs candidate."""
    out = []
    for space, name in ((vectors, "query_title_match"), (semantic, "query_title_semantic_match")):
        if query in space and title in space:
            out.append(keras.layers.Dot(axes=1, normalize=True, name=name)([space[query], space[title]]))
    if history is not None:
        out.append(keras.layers.Dot(axes=1, normalize=True, name="history_item_match")(list(history)))
    return out


def _histories(schema: Schema, vectors: dict) -> dict[str, str]:
    """History feature → the candidate feature its values are of, both model inputs (by role)."""
    return {
        history.name: target.name
        for history, target in schema.histories()
        if history.name in vectors and target is not None and target.name in vectors
    }


def _history_events(vectors, ids, history_of: dict[str, str]):
    """(behaviour history event vectors: item + category embeddings, item ids), or None."""
    if not history_of:
        return None
    names = list(history_of)
    return _sum([vectors[name] for name in names], "history_vectors"), ids[names[0]]


def _history(vectors, events, history_of: dict[str, str], config: ModelConfig):
    """(DIN pooling of the behaviour history with the candidate as query, candidate vector)."""
    if events is None:
        return None
    candidate = _sum([vectors[target] for target in history_of.values()], "candidate_vector")
    mask = NotPadding(name="history_mask")(events[1])
    pooled = TargetAttention(config.attention_units, name="history_attention")([candidate, events[0], mask])
    return pooled, candidate


def _sum(tensors: list, name: str):
    return tensors[0] if len(tensors) == 1 else keras.layers.Add(name=name)(tensors)


def _block(config: ModelConfig, num_tasks: int) -> keras.layers.Layer:
    if config.block == "shared_bottom":
        return SharedBottom(num_tasks, config.experts.units, name="shared_bottom")
    if config.block == "mmoe":
        return MultiGateMixtureOfExperts(
            num_tasks, config.experts.num_experts, config.experts.units, name="mmoe"
        )
    return ProgressiveLayeredExtraction(
        num_tasks,
        config.experts.ple_levels,
        config.experts.shared_experts,
        config.experts.task_experts,
        config.experts.units,
        name="ple",
    )
