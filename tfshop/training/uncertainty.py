"""Learned loss weights by homoscedastic uncertainty (Kendall, Gal and Cipolla, 2018).

Each output t gets a trainable log-variance s_t; training minimises
``Σ_t exp(-s_t) · L_t + s_t``, so a noisy or hard task is down-weighted and the ``+ s_t`` term
stops every weight from collapsing to zero. The learnt weights ``exp(-s_t)`` are reported in the
training logs (``weight_<output>``) and so in TensorBoard. The wrapper exists only for training:
the multi-task model inside it is what is saved and exported.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class UncertaintyWeighted(keras.Model):
    """Trains ``model`` (a dict-output Keras model) with learnt per-output loss weights."""

    def __init__(self, model: keras.Model, losses: dict[str, keras.losses.Loss]):
        super().__init__(name="uncertainty_weighted")
        self.model = model
        self.task_losses = losses
        self.log_vars = {
            name: self.add_weight(name=f"log_var_{name}", shape=(), initializer="zeros") for name in losses
        }
        self.objective = keras.metrics.Mean(name="objective")

    def call(self, inputs, training=False):
        return self.model(inputs, training=training)

    def _objective(self, y, predictions, weights) -> tf.Tensor:
        terms = list(self.model.losses)  # regularisation penalties
        for name, loss in self.task_losses.items():
            target = y[name][:, None] if predictions[name].shape[-1] == 1 else y[name]  # (batch, 1) heads
            value = loss(target, predictions[name], weights[name])
            terms.append(tf.exp(-self.log_vars[name]) * value + self.log_vars[name])
        return tf.add_n(terms)

    def _logs(self, y, predictions, weights, objective) -> dict:
        self.compute_loss(y=y, y_pred=predictions, sample_weight=weights)  # per-output loss trackers
        self.compiled_metrics.update_state(y, predictions, weights)
        self.objective.update_state(objective)
        return self.get_metrics_result()

    def train_step(self, data):
        x, y, weights = data
        with tf.GradientTape() as tape:
            predictions = self(x, training=True)
            objective = self._objective(y, predictions, weights)
        self.optimizer.minimize(objective, self.trainable_variables, tape=tape)
        logs = self._logs(y, predictions, weights, objective)
        return {**logs, **{f"weight_{name}": tf.exp(-s) for name, s in self.log_vars.items()}}

    def test_step(self, data):
        x, y, weights = data
        predictions = self(x, training=False)
        return self._logs(y, predictions, weights, self._objective(y, predictions, weights))
