"""Adam with a smaller learning rate for some variables (pretrained weights being fine-tuned)."""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras


class TwoSpeedAdam(keras.optimizers.Adam):
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
