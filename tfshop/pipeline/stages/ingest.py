"""The ``ingest`` stage: a real log (``ingest:``) converted into the run's ``shop/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfshop.pipeline.registry import stage

FORMATS = ("sequences", "taobao", "movielens", "table")


@dataclass
class IngestConfig:
    format: str = "sequences"  # sequences | taobao | movielens | table (see tfshop ingest --help)
    input: str = ""  # the source file (or ml-100k folder, or the table's YAML mapping)
    attributes: str = ""  # sequences: an S3-Rec item2attributes.json(.gz)

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format: {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.attributes and self.format != "sequences":
            raise ValueError("attributes: applies to format sequences only")


@stage(
    "ingest",
    "convert the real log of ingest: into the run's shop",
    output=lambda run: run.shop,
    default=False,
)
def ingest(run) -> None:
    from tfshop.data.sources import ADAPTERS
    from tfshop.errors import ConfigError

    config = run.config.ingest
    if not config.input:
        raise ConfigError("ingest.input: no source file given")
    options = {"attributes": config.attributes} if config.attributes else {}
    path = ADAPTERS[config.format](Path(config.input), run.shop, overwrite=True, **options)
    print(f"ingested {config.input} ({config.format}) into {path}")
