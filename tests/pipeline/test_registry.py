"""The stage registry: every stage once, in order, and read by the CLI and the config."""

import pytest

from tfshop.cli import build_parser
from tfshop.errors import ConfigError
from tfshop.pipeline.config import PipelineConfig
from tfshop.pipeline.registry import default_stages, stage, stages
from tfshop.pipeline.run import run_pipeline


def test_stages_in_pipeline_order():
    assert list(stages()) == [
        "simulate",
        "ingest",
        "prepare",
        "read",
        "pretrain",
        "train",
        "baselines",
        "evaluate",
        "export",
        "score",
        "serve",
        "incremental",
    ]
    assert default_stages() == [
        "simulate",
        "prepare",
        "train",
        "baselines",
        "evaluate",
        "export",
        "score",
        "serve",
    ]
    assert PipelineConfig().stages == default_stages()


def test_a_stage_registers_once():
    with pytest.raises(ValueError, match="stage 'train' is registered twice"):
        stage("train", "again")(lambda run: None)


def test_every_stage_is_a_command_or_reached_through_pipeline():
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in stages():
        assert name in commands, name
    assert "--warm-start" in commands["train"].format_help()


def test_unknown_stages_are_config_errors(tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text("stages: [simulate, trian]\n")
    with pytest.raises(
        ConfigError, match="stages: unknown stage 'trian' \\(stages: simulate, ingest, prepare"
    ):
        PipelineConfig.load(config)
    with pytest.raises(ConfigError, match="unknown stage 'nope'"):
        run_pipeline(PipelineConfig(run_dir=str(tmp_path / "run"), stages=["nope"]))


def test_the_docs_list_every_stage():
    from tests.conftest import REPO

    text = (REPO / "docs" / "pipeline.md").read_text()
    for s in stages().values():
        assert f"| `{s.name}` |" in text, s.name


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"name": ""}, "export.name: '' is not a model name"),
        ({"name": "a/b"}, "is not a model name"),
        ({"retrieve_k": 0}, "export.retrieve_k: must be positive"),
        ({"retrieve_candidates": "/no/such/file"}, "retrieve_candidates: /no/such/file is not a file"),
    ],
)
def test_every_stage_config_is_validated(tmp_path, export, message):
    import yaml

    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump({"export": export}))
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.load(config)


def test_every_config_section_has_a_validate():
    import dataclasses
    import typing

    hints = typing.get_type_hints(PipelineConfig)
    sections = [typing.get_args(h)[0] if typing.get_args(h) else h for h in hints.values()]
    sections = [cls for cls in sections if dataclasses.is_dataclass(cls)]
    # simulate, ingest, prepare, input, model, train, export, tabular, incremental, next_item, pretrain
    assert len(sections) == 11
    for cls in sections:
        assert callable(getattr(cls, "validate", None)), cls.__name__
