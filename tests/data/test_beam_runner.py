"""prepare on Apache Beam (DirectRunner, two worker processes) writes the in-process dataset."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.tables import ShopWriter, read_items, read_users
from tfshop.errors import ConfigError

BEAM = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
RUN_DEPENDENT = ("seconds", "shop")  # the report's fields that name the run, not the data


@pytest.fixture(scope="module")
def noisy_shop(small_shop, tmp_path_factory):
    """The small simulated shop (with its bots) in three event files, plus logged-twice rows and
    rows with an empty user, a timestamp that is no number and an unknown behaviour."""
    events = pd.concat(
        [pq.read_table(f).to_pandas() for f in sorted((small_shop / "events").glob("*.parquet"))]
    )
    events = events.astype({"timestamp": object})
    bad = events.head(3).copy()
    bad["user_id"] = ["", "u-x", "u-y"]
    bad["timestamp"] = [bad["timestamp"].iloc[0], "yesterday", bad["timestamp"].iloc[2]]
    bad["behavior"] = ["click", "click", "wishlist"]
    third = len(events) // 3
    path = tmp_path_factory.mktemp("noisy") / "shop"
    with ShopWriter(path) as writer:
        writer.write_events(events.iloc[:third])
        writer.write_events(pd.concat([events.iloc[third : 2 * third], bad, events.iloc[:40]]))
        writer.write_events(events.iloc[2 * third :])
        writer.write_items(read_items(small_shop))
        writer.write_users(read_users(small_shop))
        writer.close("test")
    return path


def test_beam_runner_writes_the_in_process_dataset(noisy_shop, tmp_path):
    config = PrepareConfig(partitions=3, chunk_rows=20_000)
    local = prepare(noisy_shop, tmp_path / "local", config)
    beam = prepare(noisy_shop, tmp_path / "beam", config, beam_options=BEAM)
    report, beam_report = (json.loads((d / "prepare_report.json").read_text()) for d in (local, beam))
    assert report["duplicates_removed"] == 40 and report["bots"]["users"] > 0
    assert report["quarantined"]["unknown behavior"] == 1 and len(report["quarantined"]) == 4
    for key in RUN_DEPENDENT:
        report.pop(key), beam_report.pop(key)
    assert beam_report == report
    files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(beam) for p in beam.rglob("*") if p.is_file())
    assert not any(part.startswith("_") for f in files for part in f.parts)  # no scratch left
    for name in files:
        if name.suffix == ".parquet":
            assert pd.read_parquet(beam / name).equals(pd.read_parquet(local / name)), name
        elif name.name != "prepare_report.json":
            assert (beam / name).read_bytes() == (local / name).read_bytes(), name


def test_beam_runner_refuses_bad_pipeline_options(noisy_shop, tmp_path):
    with pytest.raises(ConfigError, match="NoSuchRunner"):
        prepare(
            noisy_shop, tmp_path / "beam", PrepareConfig(partitions=3), beam_options=["--runner=NoSuchRunner"]
        )
    assert not (tmp_path / "beam").exists()
