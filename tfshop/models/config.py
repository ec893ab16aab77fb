"""The model config: towers, multi-task block and heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# loss weights by output name where neither model.loss_weights nor the schema sets one: the
# click task's log-loss, at a few per cent of clicks, is several times smaller than the others'
DEFAULT_LOSS_WEIGHTS = {"ctr": 3.0}


@dataclass
class ModelConfig:
    """Sizes and choices of the multi-task model; every knob has a default."""

    block: Literal["shared_bottom", "mmoe", "ple"] = "mmoe"
    tasks: list[str] = field(default_factory=list)  # schema tasks to train; empty = all
    loss_weights: dict[str, float] = field(default_factory=dict)  # per output, over the schema's and defaults
    esmm: bool = True  # with ctr and cvr (parent ctr): output ctcvr = ctr * cvr on all impressions
    embedding_dim: int = 16
    text_dim: int = 32
    text_buckets: int = 50_000
    text_encoder: str = ""  # "" = hashed bag of words; "default" (all-MiniLM-L6-v2) or a BERT directory
    # frozen: embeddings of the train split's texts precomputed once; otherwise the encoder runs
    # on every text of every batch and its top text_finetune_layers blocks (or all: full) train
    text_encoder_mode: Literal["frozen", "finetune_top_n", "full"] = "frozen"
    text_finetune_layers: int = 2  # finetune_top_n: top transformer blocks that train
    text_learning_rate_scale: float = 0.1  # pretrained weights' learning rate / train.learning_rate
    text_max_length: int = 64  # tokens per text (per pair for the cross-encoder) for the pretrained encoder
    pair_encoder: Literal["bi", "cross"] = (
        "bi"  # text pair tasks (relevance): cosine of two vectors or one joint pass
    )
    attention_units: int = 32
    expert_units: list[int] = field(default_factory=lambda: [128, 64])
    num_experts: int = 4
    ple_levels: int = 2
    shared_experts: int = 2
    task_experts: int = 1
    tower_units: list[int] = field(default_factory=lambda: [32])
    dropout: float = 0.2  # on the concatenated features, during training
    embedding_l2: float = 1e-4  # L2 penalty on the rows of id/categorical embedding tables a batch uses
    exclude_features: list[str] = field(default_factory=list)  # schema features the model ignores
    # the retrieval task's towers (tfshop.models.towers): unit vectors of retrieval_dim, a softmax
    # over the batch's items at retrieval_temperature, a causal transformer of
    # retrieval_history_blocks blocks over the history; the query tower skips retrieval_query_exclude;
    # retrieval_extra_negatives catalogue items drawn uniformly per batch join the batch's items
    retrieval_dim: int = 32
    retrieval_temperature: float = 0.1
    retrieval_history_blocks: int = 1
    retrieval_query_exclude: list[str] = field(default_factory=lambda: ["position", "category_view_share"])
    retrieval_extra_negatives: int = 0

    def validate(self) -> None:
        for name in (
            "embedding_dim",
            "text_dim",
            "text_buckets",
            "text_max_length",
            "text_finetune_layers",
            "attention_units",
            "num_experts",
            "ple_levels",
            "shared_experts",
            "task_experts",
            "retrieval_dim",
            "retrieval_history_blocks",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if not 0 < self.text_learning_rate_scale <= 1:
            raise ValueError("text_learning_rate_scale: must be in (0, 1]")
        if self.text_encoder_mode != "frozen" and not self.text_encoder:
            raise ValueError("text_encoder_mode: fine-tuning needs a pretrained text_encoder")
        if self.pair_encoder == "cross" and not self.text_encoder:
            raise ValueError("pair_encoder: the cross-encoder needs a pretrained text_encoder")
        if self.retrieval_temperature <= 0:
            raise ValueError("retrieval_temperature: must be positive")
        if self.retrieval_extra_negatives < 0:
            raise ValueError("retrieval_extra_negatives: must be >= 0")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout: must be in [0, 1)")
        if self.embedding_l2 < 0:
            raise ValueError("embedding_l2: must be >= 0")
        if not self.expert_units:
            raise ValueError("expert_units: needs at least one layer")
