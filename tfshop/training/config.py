"""Training's knobs (kept apart from the training code: configs load without TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class TrainConfig:
    """Optimisation and callbacks."""

    epochs: int = 3
    batch_size: int = 1024
    learning_rate: float = 0.002
    schedule: Literal["constant", "cosine"] = "cosine"
    monitor: str = ""  # e.g. val_ctr_auc; empty = the validation AUC of the first binary output
    early_stopping_patience: int = 2
    shuffle_buffer: int = 50_000
    steps_per_epoch: int = 0  # 0 = one pass over the train split
    # default | mirrored (local GPUs) | multi_worker | parameter_server (TF_CONFIG; tfshop.training.cluster)
    strategy: Literal["default", "mirrored", "multi_worker", "parameter_server"] = "default"
    cluster_timeout: int = 120  # seconds to wait for every task of a multi-machine cluster
    backup_every_steps: int = 0  # BackupAndRestore: 0 = at each epoch's end, else every N steps too
    warm_start: str = ""  # an earlier train/model (or train) directory to continue from
    loss_weighting: Literal["fixed", "uncertainty"] = "fixed"  # uncertainty: learnt per-output weights
    seed: int = 0
    verbose: int = 2

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "shuffle_buffer"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate: must be positive")
        if self.cluster_timeout <= 0:
            raise ValueError("cluster_timeout: must be positive")
        if self.backup_every_steps < 0:
            raise ValueError("backup_every_steps: must be >= 0")
