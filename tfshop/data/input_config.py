"""How a split of a prepared dataset is read (kept apart from the tf.data code: configs load
without TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InputConfig:
    """How a split is read."""

    batch_size: int = 256
    shuffle: bool = False
    shuffle_buffer: int = 10_000
    repeat: bool = False
    cache: bool = False
    deterministic: bool = False
    seed: int = 0
    drop_remainder: bool = False

    def validate(self) -> None:
        if self.batch_size <= 0:
            raise ValueError("batch_size: must be positive")
        if self.shuffle_buffer <= 0:
            raise ValueError("shuffle_buffer: must be positive")
