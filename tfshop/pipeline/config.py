"""The pipeline config: where a run lives, which stages run, and each stage's knobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfshop.config import from_dict, load_yaml
from tfshop.data.input_config import InputConfig
from tfshop.data.prepare import PrepareConfig
from tfshop.data.simulate import SimulateConfig
from tfshop.data.tabular import TabularConfig
from tfshop.models.config import ModelConfig
from tfshop.models.sequential_config import PretrainConfig, SequentialConfig
from tfshop.pipeline.registry import default_stages, stages
from tfshop.pipeline.stages.export import ExportConfig
from tfshop.pipeline.stages.incremental import IncrementalConfig
from tfshop.pipeline.stages.ingest import IngestConfig
from tfshop.training.config import TrainConfig


@dataclass
class PipelineConfig:
    """A whole run: where it lives, which stages run, and each stage's knobs."""

    run_dir: str = "runs/demo"
    stages: list[str] = field(default_factory=default_stages)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)  # the ingest stage's source
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: list[str] = field(default_factory=lambda: ["ctr", "cvr", "ctcvr"])
    export: ExportConfig = field(default_factory=ExportConfig)
    tabular: TabularConfig | None = None  # a table of examples instead of a shop's events
    incremental: IncrementalConfig = field(default_factory=IncrementalConfig)  # the incremental stage
    next_item: SequentialConfig | None = None  # a next-item run: sequences instead of examples
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # next-item pre-training

    def validate(self) -> None:
        check_stages(self.stages, "stages")
        if self.next_item is not None:
            unsupported = [s for s in self.stages if s in ("baselines", "incremental", "read")]
            if unsupported:
                raise ValueError(f"stages: {unsupported[0]} does not apply to a next-item run (next_item:)")
            if self.tabular is not None:
                raise ValueError("next_item: and tabular: exclude each other")
            if self.next_item.num_behaviors or self.next_item.num_gap_buckets:
                raise ValueError(
                    "next_item.num_behaviors, num_gap_buckets: a pipeline's sequences are items only"
                )
        elif "pretrain" in self.stages:
            raise ValueError("stages: pretrain pre-trains the next-item model; add a next_item: section")

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Reads a config; tabular and ingest file paths are taken relative to the config file."""
        config = from_dict(cls, load_yaml(path), str(path))
        for key in ("input", "attributes"):
            value = getattr(config.ingest, key)
            if value:
                setattr(config.ingest, key, str(Path(path).parent / value))
        if config.tabular is not None:
            base = Path(path).parent
            for split in ("train", "valid", "test"):
                value = getattr(config.tabular, split)
                if value:
                    setattr(config.tabular, split, str(base / value))
        return config


def check_stages(names: list[str], where: str) -> None:
    """A ValueError naming the first stage that is not registered."""
    known = stages()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"{where}: unknown stage {unknown[0]!r} (stages: {', '.join(known)})")
