"""Stopping a run whose loss is no longer a number, with the output and batch named."""

from __future__ import annotations

import math

import tf_keras as keras

from tfshop.errors import TrainingError


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises ``TrainingError`` at the first batch whose loss (any output's) is NaN or infinite.

    Keras's own ``TerminateOnNaN`` only stops quietly, and the run then ends far away, looking
    for best weights that no epoch wrote.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        losses = {k: float(v) for k, v in (logs or {}).items() if k.endswith("loss")}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if not bad:
            return
        outputs = [k.removesuffix("_loss") for k in bad if k != "loss"] or ["loss"]
        raise TrainingError(
            f"train: the loss of {', '.join(outputs)} became {losses[bad[0]]} at epoch {self.epoch + 1}, "
            f"batch {batch + 1}: look for extreme values in the inputs or labels "
            "(prepare's max_abs_value) or lower train.learning_rate"
        )
