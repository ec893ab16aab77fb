"""Self-supervised pre-training of the next-item model on sequences and item attributes.

The objectives of S3-Rec (Zhou et al., CIKM 2020), over a sequence in which a share of the items
(and always the last) is replaced by the mask token and which the encoder reads in both
directions:

* **MIP**, masked item prediction: each masked position's state predicts the item it hid, by the
  next-item model's own objective (full or sampled softmax over the item embedding);
* **AAP**, associated attribute prediction: each unmasked position's state predicts its item's
  attributes (a sigmoid per attribute);
* **MAP**, masked attribute prediction: each masked position's state predicts the attributes of
  the item it hid.

Each objective reads the state through a dense layer of its own. The item embedding and the
encoder are what fine-tuning starts from (saved with :func:`save_next_item`). Items without
attributes still train MIP; AAP and MAP skip their positions.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.models.sequential import NextItemModel, left_padded
from tfshop.models.sequential_config import PretrainConfig

OBJECTIVES = ("mip", "aap", "map")


class SequencePretrainer(keras.Model):
    """Trains ``model``'s item embedding and encoder on MIP, AAP and MAP.

    ``item_attributes``: ``(num_items + 1, k)`` attribute ids 1..num_attributes of each item id,
    0-padded (as :meth:`SequenceData.attribute_matrix` gives them).
    """

    def __init__(self, model: NextItemModel, item_attributes: np.ndarray, config: PretrainConfig, **kwargs):
        super().__init__(**kwargs)
        config.validate()
        self.model, self.config = model, config
        mask_row = np.zeros((1, item_attributes.shape[1]), np.int32)  # the mask token has none
        self.item_attributes = tf.constant(np.concatenate([item_attributes, mask_row]), tf.int32)
        self.num_attributes = max(int(item_attributes.max()), 1)
        dim = model.config.dim
        self.attribute_embedding = keras.layers.Embedding(
            self.num_attributes + 1, dim, embeddings_initializer=keras.initializers.RandomNormal(0, 0.02)
        )
        self.attribute_embedding.build((None,))  # read as a matrix, never called on ids
        self.heads = {name: keras.layers.Dense(dim, name=f"{name}_head") for name in OBJECTIVES}
        self.trackers = {name: keras.metrics.Mean(name) for name in ("loss", *OBJECTIVES)}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, masked, training=None):
        return self.model({"items": masked}, training=training, causal=False)

    def train_step(self, data):
        masked, items = data
        hidden = items != masked
        shown = (items > 0) & ~hidden
        with tf.GradientTape() as tape:
            states = self(masked, training=True)
            losses = {
                "mip": self.model._next_item_loss(
                    tf.boolean_mask(self.heads["mip"](states), hidden), tf.boolean_mask(items, hidden)
                ),
                "aap": self._attribute_loss(self.heads["aap"](states), items, shown),
                "map": self._attribute_loss(self.heads["map"](states), items, hidden),
            }
            weights = {
                "mip": self.config.mip_weight,
                "aap": self.config.aap_weight,
                "map": self.config.map_weight,
            }
            loss = tf.add_n([weights[k] * losses[k] for k in OBJECTIVES] + self.losses)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        for name, value in {"loss": loss, **losses}.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _attribute_loss(self, queries, items, where):
        """Mean over the positions ``where`` (with attributes) of the summed binary cross-entropy
        of every attribute: Σ softplus(logit) − Σ over the item's attributes of logit."""
        attributes = tf.gather(self.item_attributes, tf.boolean_mask(items, where))  # (N, k)
        queries = tf.boolean_mask(queries, where)
        logits = tf.matmul(queries, self.attribute_embedding.embeddings[1:], transpose_b=True)
        present = attributes > 0
        positive = tf.gather(logits, tf.maximum(attributes - 1, 0), batch_dims=1)
        per_item = tf.reduce_sum(tf.nn.softplus(logits), -1) - tf.reduce_sum(
            tf.where(present, positive, 0.0), -1
        )
        has = tf.cast(tf.reduce_any(present, -1), per_item.dtype)
        return tf.math.divide_no_nan(tf.reduce_sum(per_item * has), tf.reduce_sum(has))


def masked_batches(sequences: list[list[int]], model: NextItemModel, config: PretrainConfig, rng):
    """One epoch of ``(masked, items)`` batches, ``(B, L)`` left-padded ids.

    Each sequence is cut at a random end (so every prefix serves in turn, as S3-Rec's prefixes
    do), its last ``max_length`` items kept; a ``mask_share`` of them, and always the last, are
    replaced by the mask token.
    """
    usable = [s for s in sequences if s]
    order = rng.permutation(len(usable))
    for start in range(0, len(order), config.batch_size):
        rows = [usable[i] for i in order[start : start + config.batch_size]]
        ends = [int(rng.integers(1, len(s) + 1)) for s in rows]
        items = left_padded([s[:end] for s, end in zip(rows, ends)], model.config.max_length)
        width = max(int((items > 0).sum(axis=1).max()), 1)
        items = items[:, -width:]
        hide = (rng.random(items.shape) < config.mask_share) & (items > 0)
        hide[:, -1] = True
        yield np.where(hide, model.mask_id, items).astype(np.int32), items


def pretrain(
    model: NextItemModel,
    sequences: list[list[int]],
    item_attributes: np.ndarray,
    config: PretrainConfig,
    callbacks: list | None = None,
    verbose: int = 2,
) -> keras.callbacks.History:
    """Pre-trains ``model`` on the training ``sequences``; returns the per-epoch losses."""
    trainer = SequencePretrainer(model, item_attributes, config)
    rng = np.random.default_rng(config.seed)
    spec = tf.TensorSpec((None, None), tf.int32)
    data = tf.data.Dataset.from_generator(
        lambda: masked_batches(sequences, model, config, rng), output_signature=(spec, spec)
    ).prefetch(tf.data.AUTOTUNE)
    trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    return trainer.fit(data, epochs=config.epochs, callbacks=callbacks or [], verbose=verbose)
