"""A next-item run: sequences from a shop, pre-training, fine-tuning, evaluation, export, serving."""

import json

import pytest
import yaml

from tfshop.errors import ConfigError
from tfshop.pipeline.config import PipelineConfig
from tfshop.pipeline.run import run_pipeline


def test_next_item_pipeline_on_a_shop_ends_with_served_recommendations(small_shop, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "shop").symlink_to(small_shop)
    config = PipelineConfig.load(
        write(
            tmp_path,
            {
                "run_dir": str(run),
                "stages": ["prepare", "pretrain", "train", "evaluate", "export", "serve"],
                "next_item": {"max_length": 20, "dim": 32, "epochs": 4, "loss": "full", "dropout": 0.2},
                "pretrain": {"epochs": 3},
                "export": {"base": str(tmp_path / "saved"), "name": "next", "recommend_k": 4},
            },
        )
    )
    run_pipeline(config)
    out = capsys.readouterr().out
    assert "fine-tuning from" in out and "recommend over REST and gRPC (version 1)" in out
    pretrained = json.loads((run / "pretrain" / "history.json").read_text())
    assert set(pretrained) == {"loss", "mip", "aap", "map"} and pretrained["loss"][-1] < pretrained["loss"][0]
    assert list((run / "pretrain" / "logs" / "train").glob("events.out.tfevents.*"))
    report = json.loads((run / "eval" / "eval_report.json").read_text())
    # a broken model ranks the next item at chance among 101 (HR@10 about 0.1)
    assert report["model_sampled"]["hr@10"] > 0.3
    assert report["model_full"]["count"] == report["users"] > 100
    exported = json.loads((run / "export.json").read_text())["path"]
    assert (tmp_path / "saved" / "next" / "1").samefile(exported)


def test_ingest_stage_reads_the_configs_source_and_bad_configs_are_refused(tmp_path):
    (tmp_path / "seq.txt").write_text(
        "".join(f"u{u} " + " ".join(f"i{(u + k) % 9}" for k in range(5)) + "\n" for u in range(30))
    )
    config = PipelineConfig.load(
        write(
            tmp_path,
            {
                "run_dir": str(tmp_path / "run"),
                "stages": ["ingest", "prepare"],
                "ingest": {"format": "sequences", "input": "seq.txt"},
                "next_item": {},
            },
        )
    )
    run_pipeline(config)
    report = json.loads((tmp_path / "run" / "dataset" / "prepare_report.json").read_text())
    assert report["users"] == 30 and report["items"] == 9 and report["actions"] == 150
    for bad, message in [
        ({"stages": ["simulate", "pretrain"]}, "add a next_item: section"),
        ({"stages": ["prepare", "baselines"], "next_item": {}}, "does not apply to a next-item run"),
        ({"ingest": {"format": "csv"}}, "format: 'csv' is not one of"),
        ({"next_item": {"dim": 30, "num_heads": 4}}, "not divisible"),
        ({"next_item": {"validation_protocol": "popular"}}, "validation_protocol"),
        ({"stages": ["prepare"], "next_item": {"num_behaviors": 4}}, "sequences are items only"),
    ]:
        with pytest.raises(ConfigError, match=message):
            PipelineConfig.load(write(tmp_path, bad))


def write(folder, config: dict):
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
