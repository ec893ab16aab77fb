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
    # adam: Adam, lazy for embedding rows (a fine-tuned text encoder's weights take smaller
    # steps, model.text.learning_rate_scale); adagrad and sgd: Keras's, at learning_rate
    optimizer: Literal["adam", "adagrad", "sgd"] = "adam"
    schedule: Literal["constant", "cosine"] = "cosine"
    monitor: str = ""  # e.g. val_ctr_auc; empty = the validation AUC of the first binary output
    # false: no pass over the valid split; best epoch, early stopping and monitor go by the
    # training loss (monitor: loss)
    validation: bool = True
    early_stopping_patience: int = 2
    shuffle_buffer: int = 50_000  # streamed input only (an in-memory split is shuffled whole)
    # memory: parse the train and valid splits once and keep them in memory; stream: read and parse
    # every epoch; auto: memory when they fit in max_cache_gib (one process, default/mirrored)
    input_cache: Literal["auto", "memory", "stream"] = "auto"
    max_cache_gib: float = 4.0
    steps_per_epoch: int = 0  # 0 = one pass over the train split
    # training steps per call into the graph (fewer round trips through Python); 0 = 32 in one
    # process, 1 on a cluster or with backups inside epochs (which resume at a step)
    steps_per_execution: int = 0
    # default | mirrored (local GPUs) | multi_worker | parameter_server (TF_CONFIG; tfshop.training.cluster)
    strategy: Literal["default", "mirrored", "multi_worker", "parameter_server"] = "default"
    cluster_timeout: int = 120  # seconds to wait for every task of a multi-machine cluster
    backup: bool = True  # BackupAndRestore: a killed run resumes from its last backup
    backup_every_steps: int = 0  # 0 = a backup at each epoch's end, else every N steps too
    histogram_every: int = 1  # epochs between TensorBoard weight histograms; 0 = none
    warm_start: str = ""  # an earlier train/model (or train) directory to continue from
    loss_weighting: Literal["fixed", "uncertainty"] = "fixed"  # uncertainty: learnt per-output weights
    seed: int = 0
    verbose: int = 2

    @property
    def steps_per_call(self) -> int:
        """``steps_per_execution``, or its default for the strategy."""
        if self.steps_per_execution:
            return self.steps_per_execution
        one_by_one = self.strategy in ("multi_worker", "parameter_server") or self.backup_every_steps
        return 1 if one_by_one else 32

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "shuffle_buffer"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate: must be positive")
        if self.max_cache_gib <= 0:
            raise ValueError("max_cache_gib: must be positive")
        if self.cluster_timeout <= 0:
            raise ValueError("cluster_timeout: must be positive")
        if not self.validation and self.monitor.startswith("val_"):
            raise ValueError(f"monitor: {self.monitor} needs validation: true (without it, monitor: loss)")
        for name in ("backup_every_steps", "histogram_every", "steps_per_execution"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be >= 0")
