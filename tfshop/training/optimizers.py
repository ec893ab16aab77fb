"""Optimizers: Adam with lazy updates of embedding rows, and with a slower speed for some variables."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class LazyAdam(keras.optimizers.Adam):
    """Adam that updates, for a sparse gradient (an embedding lookup's), only the rows it touches.

    Keras's Adam decays both moments and moves every row of an embedding table at every step,
    so a step costs the whole table, however few of its rows the batch used; here the moments and
    the weights of the rows in the batch are updated and the others are left as they are (the
    ``LazyAdam`` of TensorFlow 1's contrib and of TensorFlow Addons). Dense gradients get Adam's
    usual step.
    """

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices) or self.amsgrad:
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        key = self._index_dict[self._var_key(variable)]
        m, v = self._momentums[key], self._velocities[key]
        rows = gradient.indices  # unique: the optimizer sums duplicate rows first
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * gradient.values
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(gradient.values)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows))


class TwoSpeedAdam(LazyAdam):
    """Adam whose steps on ``slow_variables`` are ``slow_scale`` times the usual step.

    Fine-tuning a pretrained encoder next to freshly initialised layers wants a smaller
    learning rate for the pretrained weights; Adam's step does not depend on the scale of the
    gradient, so the step itself is scaled: the variable moves ``slow_scale`` of the way Adam
    would move it. Every other variable gets the plain Adam step.
    """

    def __init__(
        self, learning_rate, slow_variables: list[tf.Variable] = (), slow_scale: float = 1.0, **kwargs
    ):
        super().__init__(learning_rate, **kwargs)
        if not 0 < slow_scale <= 1:
            raise ValueError(f"slow_scale must be in (0, 1], not {slow_scale}")
        self.slow_scale = slow_scale
        self._slow_keys = {self._var_key(v) for v in slow_variables}

    def update_step(self, gradient, variable):
        if self._var_key(variable) not in self._slow_keys:
            return super().update_step(gradient, variable)
        before = tf.identity(variable)
        super().update_step(gradient, variable)
        variable.assign(before + self.slow_scale * (variable - before))

    def get_config(self):
        return {**super().get_config(), "slow_scale": self.slow_scale}
