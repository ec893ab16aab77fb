"""The model config: towers, multi-task block and heads, with the text encoder, the retrieval
towers and the experts as groups of their own.

A YAML (or dict) may give a group's keys flat, as ``text_dim`` for ``text.dim`` or
``expert_units`` for ``experts.units``; :meth:`ModelConfig.of` builds one from such keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tfshop.errors import ConfigError

# loss weights by output name where neither model.loss_weights nor the schema sets one: the
# click task's log-loss, at a few per cent of clicks, is several times smaller than the others'
DEFAULT_LOSS_WEIGHTS = {"ctr": 3.0}


@dataclass
class TextConfig:
    """How text features are read (one encoder shared by every text feature)."""

    dim: int = 32
    buckets: int = 50_000
    encoder: str = ""  # "" = hashed bag of words; "default" (all-MiniLM-L6-v2) or a BERT directory
    # frozen: embeddings of the train split's texts precomputed once; otherwise the encoder runs
    # on every text of every batch and its top finetune_layers blocks (or all: full) train
    encoder_mode: Literal["frozen", "finetune_top_n", "full"] = "frozen"
    finetune_layers: int = 2  # finetune_top_n: top transformer blocks that train
    learning_rate_scale: float = 0.1  # pretrained weights' learning rate / train.learning_rate
    max_length: int = 64  # tokens per text (per pair for the cross-encoder) for the pretrained encoder
    # text pair tasks (relevance): the cosine of two vectors, or one encoder pass over the pair
    pair_encoder: Literal["bi", "cross"] = "bi"

    def validate(self) -> None:
        _positive(self, "dim", "buckets", "max_length", "finetune_layers")
        if not 0 < self.learning_rate_scale <= 1:
            raise ValueError("learning_rate_scale: must be in (0, 1]")
        if self.encoder_mode != "frozen" and not self.encoder:
            raise ValueError("encoder_mode: fine-tuning needs a pretrained text_encoder")
        if self.pair_encoder == "cross" and not self.encoder:
            raise ValueError("pair_encoder: the cross-encoder needs a pretrained text_encoder")


@dataclass
class RetrievalConfig:
    """The retrieval task's towers (tfshop.models.towers): unit vectors of ``dim``, a softmax over
    the batch's items at ``temperature``, a causal transformer of ``history_blocks`` blocks over
    the history; the query tower skips ``query_exclude``; ``extra_negatives`` catalogue items
    drawn uniformly per batch join the batch's items."""

    dim: int = 32
    temperature: float = 0.1
    history_blocks: int = 1
    query_exclude: list[str] = field(default_factory=lambda: ["position", "category_view_share"])
    extra_negatives: int = 0
    # the retrieval loss also trains the embeddings the towers share with the ranking heads
    # (false: the towers read them through a stop-gradient, so it cannot pull the heads' features)
    trains_embeddings: bool = False
    projection: bool = True  # a Dense to dim ends each tower; false: its last layer is the vector
    normalize: bool = True  # unit vectors (a cosine); false: a plain dot product
    popularity_correction: bool = True  # logQ: scores minus the log of each candidate's sampling share
    match_feature: bool = True  # the towers' dot product is a feature of the ranking block

    def validate(self) -> None:
        _positive(self, "dim", "history_blocks")
        if self.temperature <= 0:
            raise ValueError("temperature: must be positive")
        if self.extra_negatives < 0:
            raise ValueError("extra_negatives: must be >= 0")


@dataclass
class ExpertsConfig:
    """The multi-task block's experts: MLPs of ``units``; MMoE's ``num_experts``; PLE's levels of
    ``shared_experts`` and ``task_experts`` per task."""

    units: list[int] = field(default_factory=lambda: [128, 64])
    num_experts: int = 4
    ple_levels: int = 2
    shared_experts: int = 2
    task_experts: int = 1

    def validate(self) -> None:
        _positive(self, "num_experts", "ple_levels", "shared_experts", "task_experts")
        if not self.units:
            raise ValueError("units: needs at least one layer")


# flat keys (model.text_dim) of each group's fields (model.text.dim)
FLAT_KEYS = {
    **{f"text_{name}": ("text", name) for name in TextConfig.__dataclass_fields__ if name != "pair_encoder"},
    "pair_encoder": ("text", "pair_encoder"),
    **{f"retrieval_{name}": ("retrieval", name) for name in RetrievalConfig.__dataclass_fields__},
    "expert_units": ("experts", "units"),
    **{name: ("experts", name) for name in ExpertsConfig.__dataclass_fields__ if name != "units"},
}


@dataclass
class ModelConfig:
    """Sizes and choices of the multi-task model; every knob has a default."""

    block: Literal["shared_bottom", "mmoe", "ple"] = "mmoe"
    tasks: list[str] = field(default_factory=list)  # schema tasks to train; empty = all
    loss_weights: dict[str, float] = field(default_factory=dict)  # per output, over the schema's and defaults
    esmm: bool = True  # with ctr and cvr (parent ctr): output ctcvr = ctr * cvr on all impressions
    embedding_dim: int = 16
    attention_units: int = 32
    tower_units: list[int] = field(default_factory=lambda: [32])
    dropout: float = 0.2  # on the concatenated features, during training
    embedding_l2: float = 1e-4  # L2 penalty on the rows of id/categorical embedding tables a batch uses
    features: list[str] = field(default_factory=list)  # the schema features the model reads; empty = all
    exclude_features: list[str] = field(default_factory=list)  # schema features the model ignores
    # a next-item run's pretrain/ (or train/) directory whose item vectors start the item id embedding
    item_embedding_from: str = ""
    text: TextConfig = field(default_factory=TextConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    experts: ExpertsConfig = field(default_factory=ExpertsConfig)

    def validate(self) -> None:
        for group in (self.text, self.retrieval, self.experts):
            group.validate()
        _positive(self, "embedding_dim", "attention_units")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout: must be in [0, 1)")
        if self.embedding_l2 < 0:
            raise ValueError("embedding_l2: must be >= 0")

    def input_features(self, schema) -> list:
        """The schema's features this model reads (``features``, less ``exclude_features``)."""
        unknown = [name for name in self.features if name not in {f.name for f in schema.features}]
        if unknown:
            known = ", ".join(f.name for f in schema.features)
            raise ConfigError(f"model.features: no feature {unknown[0]!r} in the schema (features: {known})")
        return [
            f
            for f in schema.features
            if (not self.features or f.name in self.features) and f.name not in self.exclude_features
        ]

    @staticmethod
    def grouped_keys(data: dict[str, Any]) -> dict[str, Any]:
        """``data`` with flat keys (``text_dim``) moved into their groups (``text: {dim}``)."""
        out = {key: value for key, value in data.items() if key not in FLAT_KEYS}
        for key, value in data.items():
            if key in FLAT_KEYS:
                group, name = FLAT_KEYS[key]
                out[group] = {**out.get(group, {}), name: value}
        return out

    @classmethod
    def of(cls, **keys) -> ModelConfig:
        """A validated config from flat or grouped keys, as a YAML's ``model:`` section gives them."""
        from tfshop.config import from_dict

        return from_dict(cls, keys, "model")


def _positive(config, *names: str) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"{name}: must be positive")
