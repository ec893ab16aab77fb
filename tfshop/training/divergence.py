"""Stopping a run whose loss is no longer a number, with the output and batch named."""

from __future__ import annotations

import math

import tf_keras as keras

from tfshop.errors import TrainingError


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises ``TrainingError`` at the end of the first epoch whose loss (any output's) is NaN or
    infinite: the check for strategies that allow no batch-level callbacks (parameter servers).

    Keras's own ``TerminateOnNaN`` only stops quietly, and the run then ends far away, looking
    for best weights that no epoch wrote.
    """

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"epoch {epoch + 1}")

    def _check(self, logs, when: str) -> None:
        losses = {
            k: float(v) for k, v in (logs or {}).items() if k.endswith("loss") and not k.startswith("val_")
        }
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if not bad:
            return
        outputs = [k.removesuffix("_loss") for k in bad if k != "loss"] or ["loss"]
        raise TrainingError(
            f"train: the loss of {', '.join(outputs)} became {losses[bad[0]]} at {when}: look for "
            "extreme values in the inputs or labels (prepare's max_abs_value) or lower train.learning_rate"
        )


class StopOnNonFiniteBatchLoss(StopOnNonFiniteLoss):
    """The same check after every call into the graph (one batch, or ``steps_per_execution``),
    naming the batches. Each call reads one number, the total loss (a non-finite output loss makes
    it non-finite too); the outputs are looked at only then."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch, self.checked = 0, 0
        self._supports_tf_logs = True  # Keras need not copy every batch's logs out of the graph

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.checked = epoch, 0

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            first, last = self.checked + 1, batch + 1
            batches = f"batch {last}" if first == last else f"batches {first}-{last}"
            self._check(logs, f"epoch {self.epoch + 1}, {batches}")
        self.checked = batch + 1


def non_finite_loss_guard(strategy: str) -> StopOnNonFiniteLoss:
    """The batch-level check where the strategy allows it, else the epoch-level one."""
    return StopOnNonFiniteLoss() if strategy == "parameter_server" else StopOnNonFiniteBatchLoss()
