"""Sequential next-item recommendation: a causal transformer user tower (SASRec-style).

Every position of a user's sequence predicts the item that follows it, so one sequence gives as
many training targets as it has items. Each event is its item's embedding (shared with the
output side), plus, when configured, embeddings of its behaviour type and time-gap bucket; the
:class:`~tfshop.layers.sequence.CausalSequenceEncoder` adds positions. The objective is a
softmax over the items: ``full`` over the whole catalogue, or ``sampled`` over the batch's
positives plus ``extra_negatives`` uniform items with logQ correction
(:mod:`tfshop.layers.retrieval`). The state after the last event is the user vector, whose dot
product with an item embedding scores that item as the next one. A user with no history (cold
start) gets the items' training popularity as scores instead; ids outside ``1..num_items`` in a
history (unknown items) are dropped before scoring and counted in the log.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.errors import TfshopError
from tfshop.evaluation.ranking import ranking_metrics, sample_negatives, target_ranks
from tfshop.layers.retrieval import CandidateSampler, retrieval_task, sampled_softmax_loss
from tfshop.layers.sequence import CausalSequenceEncoder
from tfshop.models.sequential_config import SequentialConfig

log = logging.getLogger(__name__)


class NextItemModel(keras.Model):
    """Causal transformer over ``{"items": (B, L) ids, 0 = padding[, "behaviors", "gaps"]}``.

    Item ids run 1..num_items; id ``num_items + 1`` is the mask token of pre-training.
    """

    def __init__(self, num_items: int, config: SequentialConfig, item_counts: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        config.validate()
        self.config, self.num_items, self.mask_id = config, num_items, num_items + 1
        self.item_embedding = keras.layers.Embedding(
            num_items + 2, config.dim, embeddings_initializer=keras.initializers.RandomNormal(0, 0.02)
        )
        self.behavior_embedding = (
            keras.layers.Embedding(config.num_behaviors + 1, config.dim) if config.num_behaviors else None
        )
        self.gap_embedding = (
            keras.layers.Embedding(config.num_gap_buckets + 1, config.dim) if config.num_gap_buckets else None
        )
        self.encoder = CausalSequenceEncoder(
            config.max_length, config.num_blocks, config.num_heads, config.dropout
        )
        self.task = retrieval_task(config.temperature)
        self.sampler = CandidateSampler(item_counts, config.extra_negatives)
        self.popularity = np.log1p(np.asarray(item_counts[1:], dtype=np.float32))  # cold-start scores

    def call(self, inputs, training=None, causal=True):
        ids = inputs["items"]
        vectors = self.item_embedding(ids) * math.sqrt(self.config.dim)
        if self.behavior_embedding is not None:
            vectors += self.behavior_embedding(inputs["behaviors"])
        if self.gap_embedding is not None:
            vectors += self.gap_embedding(inputs["gaps"])
        return self.encoder([vectors, ids > 0], training=training, causal=causal)

    def user_vectors(self, inputs) -> tf.Tensor:
        """The state after each sequence's last event, ``(B, d)``."""
        return self(inputs, training=False)[:, -1]

    def item_vectors(self) -> tf.Tensor:
        """Every item's output embedding, ``(num_items, d)`` for ids 1..num_items."""
        return self.item_embedding.embeddings[1 : self.num_items + 1]

    def get_config(self):
        return {"num_items": self.num_items, "config": asdict(self.config)}

    def train_step(self, data):
        inputs, targets = data
        with tf.GradientTape() as tape:
            states = self(inputs, training=True)
            keep = targets > 0
            queries, positives = tf.boolean_mask(states, keep), tf.boolean_mask(targets, keep)
            loss = self._next_item_loss(queries, positives) + tf.add_n([0.0, *self.losses])
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return {"loss": loss}

    def _next_item_loss(self, queries, positives):
        if self.config.loss == "full":
            logits = tf.matmul(queries, self.item_vectors(), transpose_b=True) / self.config.temperature
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(positives - 1, logits)
            return tf.reduce_mean(losses)
        return sampled_softmax_loss(
            self.task, queries, positives, self.item_embedding, self.sampler, self.config.logq_correction
        )


def save_next_item(model: NextItemModel, directory: str | Path, item_ids: list[str]) -> None:
    """``directory/weights*`` (a TensorFlow checkpoint), ``config.json`` and ``item_ids.txt``
    (the id of item 1, 2, ... a line: what the embedding's rows are)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_weights(str(directory / "weights"))
    config = {"num_items": model.num_items, "config": asdict(model.config)}
    (directory / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (directory / "item_ids.txt").write_text("".join(f"{item}\n" for item in item_ids), encoding="utf-8")


def load_next_item(directory: str | Path, item_counts: np.ndarray | None = None) -> NextItemModel:
    """The model :func:`save_next_item` wrote (``item_counts``: for its cold-start answers)."""
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise TfshopError(f"{directory}: not a saved next-item model (no config.json)")
    saved = json.loads((directory / "config.json").read_text())
    counts = np.ones(saved["num_items"] + 1) if item_counts is None else item_counts
    model = NextItemModel(saved["num_items"], SequentialConfig(**saved["config"]), counts)
    restore_weights(model, directory)
    return model


def restore_weights(model: NextItemModel, directory: str | Path) -> None:
    """Builds ``model`` and loads the weights :func:`save_next_item` wrote to ``directory``
    (e.g. a pre-trained model's, to fine-tune from)."""
    model({"items": tf.zeros((1, 1), tf.int32)})
    model.load_weights(str(Path(directory) / "weights")).expect_partial()


def left_padded(sequences: list[list[int]], length: int) -> np.ndarray:
    """The last ``length`` ids of each sequence, right-aligned, zeros on the left."""
    out = np.zeros((len(sequences), length), dtype=np.int32)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:]
        if tail:
            out[row, -len(tail) :] = tail
    return out


def training_arrays(sequences: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (each sequence but its last item) and next-item targets (shifted by one)."""
    usable = [s for s in sequences if len(s) >= 2]
    return left_padded([s[:-1] for s in usable], length), left_padded([s[1:] for s in usable], length)


def item_counts(sequences: list[list[int]], num_items: int) -> np.ndarray:
    """How often each item id (0..num_items) occurs as a target in training."""
    counts = np.zeros(num_items + 1)
    for sequence in sequences:
        np.add.at(counts, sequence[1:], 1)
    return counts


def score_next(model: NextItemModel, histories: list[list[int]]) -> np.ndarray:
    """Scores of every item (column ``i`` is item ``i + 1``) as each history's next item.

    Unknown ids are dropped from the histories; an empty history scores items by popularity.
    """
    known = [[i for i in history if 1 <= i <= model.num_items] for history in histories]
    dropped = sum(map(len, histories)) - sum(map(len, known))
    if dropped:
        log.warning("score_next: dropped %d unknown item ids from the histories", dropped)
    inputs = left_padded(known, model.config.max_length)
    scores = tf.matmul(model.user_vectors({"items": inputs}), model.item_vectors(), transpose_b=True).numpy()
    scores[~(inputs > 0).any(axis=1)] = model.popularity
    return scores


def popularity_scores(item_counts: np.ndarray) -> Callable[[list[list[int]]], np.ndarray]:
    """A scorer for :func:`evaluate_next_item` that ranks every history's items by popularity."""
    popularity = np.log1p(np.asarray(item_counts[1:], dtype=np.float32))
    return lambda histories: np.tile(popularity, (len(histories), 1))


def evaluate_next_item(
    score: NextItemModel | Callable[[list[list[int]]], np.ndarray],
    histories: list[list[int]],
    targets: np.ndarray,
    protocol: Literal["full", "sampled"],
    negatives: int = 100,
    seed: int = 0,
    ks: tuple[int, ...] = (10, 20),
    exclude_history: bool = True,
    batch_size: int = 1024,
) -> dict[str, float]:
    """Ranking metrics of each history's true next item (:mod:`tfshop.evaluation.ranking`) by
    ``score``: a model, or a function of histories giving every item's score (column ``i`` is
    item ``i + 1``, as :func:`score_next`).

    ``sampled``: the target among ``negatives`` items the user never interacted with, drawn
    uniformly with ``seed``. ``full``: among all items (those in the history excluded when
    ``exclude_history``). Users are scored ``batch_size`` at a time.
    """
    targets = np.asarray(targets)
    if isinstance(score, NextItemModel):
        model = score
        score = lambda batch: score_next(model, batch)  # noqa: E731
    rng = np.random.default_rng(seed)
    ranks = []
    for start in range(0, len(targets), batch_size):
        batch, target = histories[start : start + batch_size], targets[start : start + batch_size]
        scores = score(batch)
        num_items = scores.shape[1]
        if protocol == "sampled":
            seen = [set(h) | {int(t)} for h, t in zip(batch, target)]
            candidates = np.concatenate(
                [target[:, None], sample_negatives(seen, num_items, negatives, rng)], axis=1
            )
            sampled_scores = np.take_along_axis(scores, candidates - 1, axis=1)
            ranks.append(target_ranks(sampled_scores, np.zeros(len(target), dtype=int)))
            continue
        exclude = np.zeros(scores.shape, dtype=bool)
        if exclude_history:
            for row, history in enumerate(batch):
                exclude[row, np.asarray(history, dtype=int) - 1] = True
        ranks.append(target_ranks(scores, target - 1, exclude))
    return ranking_metrics(np.concatenate(ranks), ks)


class KeepBest(keras.callbacks.Callback):
    """After each epoch, scores ``validate()`` (into the epoch's logs as ``val_score``, for the
    callbacks after it); keeps the best weights, stops after ``patience`` epochs without gain,
    and restores the best at the end."""

    def __init__(self, validate: Callable[[], float], patience: int, log: Callable[[str], None] = print):
        super().__init__()
        self.validate, self.patience, self.log = validate, patience, log
        self.best, self.best_weights, self.waited = -np.inf, None, 0

    def on_epoch_end(self, epoch, logs=None):
        score = self.validate()
        if logs is not None:
            logs["val_score"] = score
        self.log(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, validation {score:.4f}")
        if score > self.best:
            self.best, self.best_weights, self.waited = score, self.model.get_weights(), 0
        else:
            self.waited += 1
            if self.waited >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def fit_next_item(
    model: NextItemModel,
    sequences: list[list[int]],
    validate: Callable[[], float] | None = None,
    seed: int = 0,
    verbose: int = 0,
    callbacks: list | None = None,
) -> keras.callbacks.History:
    """Trains on every next-item target of ``sequences`` (the last ``max_length`` of each);
    ``validate``: the score after each epoch that keeps the best weights and stops early."""
    config = model.config
    inputs, targets = training_arrays(sequences, config.max_length)
    rng = np.random.default_rng(seed)
    spec = tf.TensorSpec((None, None), tf.int32)
    data = tf.data.Dataset.from_generator(
        lambda: length_batches(inputs, targets, config.batch_size, rng),
        output_signature=({"items": spec}, spec),
    ).prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    callbacks = [*([KeepBest(validate, config.patience)] if validate else []), *(callbacks or [])]
    return model.fit(data, epochs=config.epochs, callbacks=callbacks, verbose=verbose)


def length_batches(inputs: np.ndarray, targets: np.ndarray, batch_size: int, rng: np.random.Generator):
    """One epoch of batches of similar-length sequences, each cut to its longest sequence.

    Rows are shuffled, sorted by length within pools of 50 batches, batched, and the batches
    shuffled: most sequences are short, so this saves most of the padding's work.
    """
    lengths = (inputs > 0).sum(axis=1)
    order, pool = rng.permutation(len(inputs)), 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    for index in rng.permutation(len(batches)):
        rows = batches[index]
        width = max(int(lengths[rows].max()), 1)
        yield {"items": inputs[rows, -width:]}, targets[rows, -width:]
