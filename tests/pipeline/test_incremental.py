"""The incremental stage: day-by-day windows, scored, warm-started, exported as next versions."""

import json

import yaml


def test_the_incremental_stage_scores_trains_and_exports_each_day(tmp_path, capsys):
    from tensorflow.python.tools import saved_model_utils

    from tfshop.pipeline.config import PipelineConfig
    from tfshop.pipeline.run import run_pipeline

    config = tmp_path / "incremental.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "run_dir": str(tmp_path / "run"),
                "stages": ["simulate", "incremental"],
                "simulate": {"events": 30_000, "items": 300, "days": 4, "seed": 2},
                "prepare": {"partitions": 1},
                "model": {
                    "tasks": ["ctr", "cvr", "retrieval"],
                    "embedding_dim": 8,
                    "expert_units": [16],
                    "tower_units": [8],
                },
                "train": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01, "verbose": 0},
                "incremental": {"first_days": 2, "day_epochs": 1},
                "export": {"base": str(tmp_path / "saved"), "name": "daily"},
            }
        )
    )
    run_pipeline(PipelineConfig.load(config))
    rows = json.loads((tmp_path / "run" / "incremental" / "incremental.json").read_text())
    assert [r["day"] for r in rows] == [2, 3]
    assert all(0.6 < r["updated"]["auc"] < 1 and r["updated"]["examples"] > 1000 for r in rows)
    assert rows[0]["updated"] == rows[0]["first_model"]  # day 2 is scored by the first model itself
    versions = sorted(p for p in (tmp_path / "saved" / "daily").iterdir() if p.name.isdigit())
    assert [p.name for p in versions] == ["1", "2", "3"]
    for version in versions:  # no served signature disappears from one day's version to the next
        signatures = saved_model_utils.get_meta_graph_def(str(version), "serve").signature_def
        assert {"serving_default", "predict_examples", "retrieve"} <= set(signatures), version
    assert (tmp_path / "run" / "incremental" / "incremental.png").stat().st_size > 1000
    assert "ctr AUC on each day, before training on it" in capsys.readouterr().out
