"""Retrieval losses: a query vector against its positive item and sampled negatives.

The candidates of a batch are the batch's own positives (in-batch negatives) plus, optionally,
``extra`` items drawn uniformly from the catalogue (mixed negative sampling, Yang et al. 2020):
popular items appear in a batch more often than rare ones, so in-batch negatives alone push
popular items down; the uniform ones reach the long tail. Scores are corrected by the log of
each candidate's sampling probability under that mixture (logQ correction, Yi et al. 2019), so
the sampled softmax estimates the full softmax; items equal to a row's positive are not counted
as its negatives (accidental hits). The loss is TensorFlow Recommenders' ``Retrieval`` task.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras as keras

MIN_LOGIT = float(np.finfo(np.float32).min / 100)  # TFRS's value for a masked candidate


class CandidateSampler:
    """Candidate ids and sampling probabilities for a batch of positives.

    ``counts[i]``: how often item ``i`` is a positive in the training data (row 0, padding,
    is never sampled). A batch of ``n`` positives holds item ``i`` ``n · counts[i] / sum``
    times in expectation, and ``extra`` uniform draws add ``extra / num_items``; the correction
    uses that expected count over the ``n + extra`` candidates.
    """

    def __init__(self, counts: np.ndarray, extra: int = 0):
        counts = np.asarray(counts, dtype=np.float64).copy()
        counts[0] = 0.0
        if counts.sum() <= 0:
            raise ValueError("CandidateSampler: no positives to learn sampling probabilities from")
        self.popularity = tf.constant(counts / counts.sum(), tf.float32)
        self.num_items = int(len(counts) - 1)
        self.extra = int(extra)

    def __call__(self, positive_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(candidate ids, their sampling probabilities): positives first, extras after."""
        positives = tf.shape(positive_ids)[0]
        extras = tf.random.uniform([self.extra], 1, self.num_items + 1, dtype=positive_ids.dtype)
        ids = tf.concat([positive_ids, extras], axis=0)
        total = tf.cast(positives + self.extra, tf.float32)
        expected = (
            tf.cast(positives, tf.float32) * tf.gather(self.popularity, ids) + self.extra / self.num_items
        )
        return ids, expected / total


def retrieval_task(temperature: float = 1.0) -> tfrs.tasks.Retrieval:
    """TFRS's retrieval task with a batch-mean softmax loss and accidental-hit removal."""
    return tfrs.tasks.Retrieval(
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, reduction="sum_over_batch_size"),
        temperature=temperature,
        remove_accidental_hits=True,
    )


def sampled_softmax_loss(
    task: tfrs.tasks.Retrieval,
    queries: tf.Tensor,
    positive_ids: tf.Tensor,
    item_vectors,
    sampler: CandidateSampler,
    logq_correction: bool = True,
) -> tf.Tensor:
    """The mean softmax loss of each query's positive against the batch's candidates.

    ``item_vectors``: a callable from item ids to their vectors (the item tower).
    """
    ids, probabilities = sampler(positive_ids)
    return task(
        queries,
        item_vectors(ids),
        candidate_sampling_probability=probabilities if logq_correction else None,
        candidate_ids=ids,
        compute_metrics=False,
        compute_batch_metrics=False,
    )


@keras.utils.register_keras_serializable(package="tfshop")
class InBatchScores(keras.layers.Layer):
    """``[query vectors (B, d), item vectors (B, d), item ids (B,)]`` of a batch of impressions,
    optionally followed by ``[extra item vectors (N, d), extra item ids (N,)]`` of N items drawn
    uniformly from a catalogue of ``catalogue_size`` (:class:`CatalogueSample`) → ``(B, B + N)``
    logits of every row's query against every candidate, the batch's own items first.

    Scores are divided by ``temperature``, corrected (``popularity_correction``) by the log of
    each candidate's chance of being drawn (its share of the training impressions,
    ``impressions``: item id → count, items never shown in training getting the rarest item's
    share; plus, with extras, N / (B · catalogue_size) for the uniform draws: the mixture's
    probability up to a constant factor)
    and, for each row, the other candidates that are the row's own item are masked out
    (accidental hits) — TFRS's correction and masking layers. Only for training:
    :class:`InBatchSoftmax` turns the logits into the loss.
    """

    def __init__(
        self,
        impressions: dict[str, int],
        temperature: float = 0.1,
        catalogue_size: int = 0,
        popularity_correction: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.impressions = {k: int(v) for k, v in impressions.items() if v > 0}
        self.temperature, self.catalogue_size = float(temperature), int(catalogue_size)
        self.popularity_correction = bool(popularity_correction)
        counts = np.array(list(self.impressions.values()), np.float64)
        if not len(counts) or counts.sum() <= 0:
            raise ValueError("InBatchScores: no training impressions to derive sampling probabilities from")
        shares = counts / counts.sum()
        with tf.init_scope():
            self.share = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(list(self.impressions)), tf.constant(shares, tf.float32)
                ),
                default_value=float(shares[shares > 0].min()),
            )

    def call(self, inputs):
        queries, items, ids, *extra = inputs
        ids = tf.reshape(ids, [-1])
        uniform = 0.0
        if extra:
            if self.catalogue_size <= 0:
                raise ValueError(
                    "InBatchScores: extra candidates need the catalogue_size they are drawn from"
                )
            extra_items, extra_ids = extra
            batch = tf.cast(tf.shape(queries)[0], tf.float32)
            uniform = tf.cast(tf.shape(extra_items)[0], tf.float32) / (batch * self.catalogue_size)
            items, ids = tf.concat([items, extra_items], 0), tf.concat([ids, tf.reshape(extra_ids, [-1])], 0)
        scores = tf.matmul(queries, items, transpose_b=True)
        if self.temperature != 1.0:
            scores /= self.temperature
        if self.popularity_correction:
            correction = tfrs.layers.loss.SamplingProbablityCorrection()
            scores = correction(scores, self.share.lookup(ids) + uniform)
        return _without_accidental_hits(scores, ids)

    def get_config(self):
        return {
            **super().get_config(),
            "impressions": self.impressions,
            "temperature": self.temperature,
            "catalogue_size": self.catalogue_size,
            "popularity_correction": self.popularity_correction,
        }


def _without_accidental_hits(scores: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
    """``scores`` (B, C) of rows whose own item is candidate ``i`` for row ``i``, with every other
    candidate that is the row's item set to a vanishing logit (TFRS's accidental-hit removal, in
    three elementwise passes over the matrix instead of eight)."""
    same = tf.unique(ids).idx  # equal ints for equal ids: compares ints, not strings
    hits = tf.equal(same[: tf.shape(scores)[0], None], same[None, :])
    hits = tf.linalg.set_diag(hits, tf.zeros(tf.shape(scores)[:1], tf.bool))  # the row's own label
    return tf.where(hits, MIN_LOGIT, scores)


@keras.utils.register_keras_serializable(package="tfshop")
class CatalogueSample(keras.layers.Layer):
    """``count`` catalogue rows drawn uniformly, with replacement, at every call: the extra
    negatives of :class:`InBatchScores`, as a dict of raw item-tower inputs.

    ``columns``: input name → one value per catalogue row (a row of a 2-D array for sequence
    features); ``dtypes``: their numpy dtypes where the values alone do not tell (from a config).
    The layer's input only places it in the model's graph.
    """

    def __init__(self, columns: dict, count: int, dtypes: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        dtypes = dtypes or {}
        self.columns = {name: np.asarray(values, dtype=dtypes.get(name)) for name, values in columns.items()}
        self.count = int(count)
        sizes = {len(values) for values in self.columns.values()}
        if len(sizes) != 1 or not sizes.pop() or self.count <= 0:
            raise ValueError("CatalogueSample: needs columns of one non-zero length and a positive count")

    def call(self, anchor):
        size = len(next(iter(self.columns.values())))
        rows = tf.random.uniform([self.count], 0, size, dtype=tf.int32)
        return {name: tf.gather(tf.constant(values), rows) for name, values in self.columns.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "columns": {name: values.tolist() for name, values in self.columns.items()},
            "count": self.count,
            "dtypes": {name: values.dtype.str for name, values in self.columns.items()},
        }


class InBatchSoftmax(keras.losses.Loss):
    """Softmax cross-entropy of each row's own item (the diagonal of :class:`InBatchScores`).

    The target is ignored: the sample weights choose the rows that count (the clicked ones).
    """

    def __init__(self, name: str = "in_batch_softmax", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, logits):
        rows = tf.range(tf.shape(logits)[0])
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=rows, logits=logits)
