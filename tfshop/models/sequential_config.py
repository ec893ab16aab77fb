"""The next-item model's knobs (``next_item:``) and its pre-training's (``pretrain:``); both load
without TensorFlow, like every config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class SequentialConfig:
    """Sizes, objective, training and evaluation knobs of the next-item model."""

    max_length: int = 50  # most recent events kept per sequence
    dim: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.2
    loss: Literal["full", "sampled"] = "sampled"
    extra_negatives: int = 256  # sampled: uniform negatives per batch besides in-batch ones
    logq_correction: bool = True  # sampled: correct scores by log sampling probability
    temperature: float = 1.0
    num_behaviors: int = 0  # behaviour types embedded with each event (ids 1..n); 0 = none
    num_gap_buckets: int = 0  # time-gap buckets embedded with each event (ids 1..n); 0 = none
    batch_size: int = 128
    learning_rate: float = 1e-3
    epochs: int = 20  # at most; the best validation epoch is kept
    patience: int = 3  # epochs without validation gain before stopping
    eval_negatives: int = 100  # sampled protocol: uniform negatives the user never acted on
    validation_users: int = 5000  # users whose validation NDCG@10 picks the best epoch (0 = all)
    validation_protocol: Literal["sampled", "full"] = "sampled"  # how validation NDCG@10 ranks

    def validate(self) -> None:
        for name in (
            "max_length",
            "dim",
            "num_blocks",
            "num_heads",
            "batch_size",
            "epochs",
            "eval_negatives",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.dim % self.num_heads:
            raise ValueError(f"dim: {self.dim} is not divisible by num_heads {self.num_heads}")
        for name in ("loss", "validation_protocol"):
            if getattr(self, name) not in ("full", "sampled"):
                raise ValueError(f"{name}: {getattr(self, name)!r} is not one of full, sampled")
        if self.temperature <= 0:
            raise ValueError("temperature: must be positive")
        if self.extra_negatives < 0:
            raise ValueError("extra_negatives: must be >= 0")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout: must be in [0, 1)")
        if self.validation_users < 0:
            raise ValueError("validation_users: must be >= 0")


@dataclass
class PretrainConfig:
    """Self-supervised pre-training on the training sequences and the items' attributes (S3-Rec's
    objectives): masked item prediction (``mip``), associated attribute prediction (``aap``) and
    masked attribute prediction (``map``), weighted."""

    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-3
    mask_share: float = 0.2  # items replaced by the mask token (the last one always is)
    mip_weight: float = 1.0
    aap_weight: float = 0.2
    map_weight: float = 1.0
    seed: int = 0

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate: must be positive")
        if not 0 <= self.mask_share < 1:
            raise ValueError("mask_share: must be in [0, 1)")
        weights = (self.mip_weight, self.aap_weight, self.map_weight)
        if min(weights) < 0 or max(weights) == 0:
            raise ValueError("mip_weight, aap_weight, map_weight: must be >= 0, one of them positive")
