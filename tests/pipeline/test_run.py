"""The real pipeline, every stage, on a small synthetic shop."""

import dataclasses
import json

import yaml

from tests.conftest import TEXT_TASKS
from tfshop.cli import main
from tfshop.pipeline.config import PipelineConfig
from tfshop.pipeline.run import run_pipeline


def test_whole_pipeline_then_resume(tmp_path, capsys):
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path / "run"),
                "simulate": {"events": 20_000, "items": 300, "seed": 5},
                "prepare": {"partitions": 2},
                "model": {"block": "ple", "embedding_dim": 8, "expert_units": [16], "tower_units": [8]},
                "train": {"epochs": 1, "batch_size": 256, "steps_per_epoch": 20, "verbose": 0},
                "baselines": ["ctr"],
                "export": {"base": str(tmp_path / "saved_models"), "name": "shop"},
            }
        )
    )
    config = PipelineConfig.load(config_file)
    timings = run_pipeline(config)
    assert list(timings) == [
        "simulate",
        "prepare",
        "train",
        "baselines",
        "evaluate",
        "export",
        "score",
        "serve",
    ]
    assert all(seconds > 0 for seconds in timings.values())
    out = capsys.readouterr().out
    assert "scored 5 test rows with" in out and "| ctr | auc |" in out
    assert "as served (version 1) over each protocol" in out
    assert len([line for line in out.splitlines() if line.split()[1:2] in (["http"], ["grpc"])]) == 10
    run = tmp_path / "run"
    report = json.loads((run / "eval" / "eval_report.json").read_text())
    assert set(report) == {"ctr", "cvr", "rating", "intent", *TEXT_TASKS, "ctcvr", "retrieval"}
    assert "retrieve: top 100 of the catalogue" in out
    assert set(report["ctr"]) == {"multitask", "single_task", "prior", "oracle"}
    assert report["ctr"]["oracle"]["auc"] > 0.7 and report["ctr"]["prior"]["auc"] == 0.5
    assert "gauc" in report["ctr"]["multitask"]
    assert (run / "eval" / "loss_curves.png").stat().st_size > 1000
    assert (run / "eval" / "calibration.png").stat().st_size > 1000
    assert json.loads((run / "export.json").read_text())["path"].endswith("shop/1")
    assert any((run / "train" / "logs" / "train").iterdir())
    # The item embedding is in TensorBoard's projector, one labelled row per embedding row.
    logs = run / "train" / "logs"
    assert 'metadata_path: "item_metadata.tsv"' in (logs / "projector_config.pbtxt").read_text()
    rows = (logs / "item_metadata.tsv").read_text().splitlines()
    assert rows[0] == "item_id\ttitle" and rows[3].split("\t")[1]  # a real item with its title
    import tensorflow as tf

    [(name, shape)] = [v for v in tf.train.list_variables(str(logs)) if v[0].startswith("item_embedding")]
    assert shape[0] == len(rows) - 1

    # A second run skips every stage whose output exists (score and serve, which write none, would
    # run again: they are left out here).
    again = run_pipeline(dataclasses.replace(config, stages=config.stages[:-2]))
    assert list(again) == config.stages[:-2] and not any(again.values())
    assert main(["-q", "export", "--config", str(config_file), "--force"]) == 0
    assert (tmp_path / "saved_models" / "shop" / "2").is_dir()
    capsys.readouterr()
    assert main(["-q", "pipeline", "--config", str(config_file), "--stages", "trian"]) == 2
    assert "unknown stage 'trian'" in capsys.readouterr().err


def test_demo_config_documents_every_knob():
    """pipelines/configs/demo.yaml is the reference of every knob: it must list them all."""
    import dataclasses

    from tests.conftest import REPO

    demo = yaml.safe_load((REPO / "pipelines" / "configs" / "demo.yaml").read_text())
    config = PipelineConfig.load(REPO / "pipelines" / "configs" / "demo.yaml")
    sections = {
        name: (getattr(config, name), demo[name]) for name in ("simulate", "prepare", "input", "model")
    }
    sections |= {name: (getattr(config, name), demo[name]) for name in ("train", "export")}
    sections |= {
        f"model.{name}": (getattr(config.model, name), demo["model"][name])
        for name in ("text", "experts", "retrieval")
    }
    next_item = yaml.safe_load((REPO / "pipelines" / "configs" / "next_item.yaml").read_text())
    loaded = PipelineConfig.load(REPO / "pipelines" / "configs" / "next_item.yaml")
    sections |= {
        f"next_item.yaml {name}": (getattr(loaded, name), next_item[name]) for name in ("ingest", "pretrain")
    }
    behaviours = {"num_behaviors", "num_gap_buckets"}  # the model's Python API only (refused in a pipeline)
    sections["next_item.yaml next_item"] = (
        loaded.next_item,
        {**next_item["next_item"], **dict.fromkeys(behaviours)},
    )
    for section, (values, documented) in sections.items():
        fields = {f.name for f in dataclasses.fields(values)}
        assert fields == set(documented), f"{section}: {fields ^ set(documented)}"
