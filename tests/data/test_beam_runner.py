"""prepare's runners: in worker processes it writes what the previous implementation wrote (one
``tf.train.Example`` built per row in Python: ``tests/fixtures/make_prepare_golden.py``), and on
Apache Beam (DirectRunner, two worker processes) the same files as in worker processes."""

import gzip
import json

import pandas as pd
import pytest

from tests.fixtures.make_prepare_golden import CONFIG, GOLDEN, decoded_dataset
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.errors import ConfigError

BEAM = ["--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
RUN_DEPENDENT = ("seconds", "shop")  # the report's fields that name the run, not the data


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple:
    """The golden shop (bots, rows logged twice, malformed rows, two event files) prepared in
    worker processes and on Beam."""
    config = PrepareConfig(**CONFIG, workers=2)
    out = tmp_path_factory.mktemp("runners")
    local = prepare(GOLDEN / "shop", out / "local", config)
    return local, prepare(GOLDEN / "shop", out / "beam", config, beam_options=BEAM)


def test_in_process_runner_writes_the_previous_implementations_dataset(datasets):
    with gzip.open(GOLDEN / "dataset.json.gz", "rt", encoding="utf-8") as f:
        golden = json.load(f)
    dataset = decoded_dataset(datasets[0])
    assert golden["report"]["bots"]["rows"] > 0 and golden["report"]["duplicates_removed"] == 25
    assert len(golden["report"]["quarantined"]) == 4
    assert dataset["report"] == golden["report"]
    assert dataset["vocab"] == golden["vocab"]
    assert dataset["stats"] == golden["stats"]
    for split, records in golden["records"].items():
        assert len(dataset["records"][split]) == len(records), split
        assert dataset["records"][split] == records, split


def test_beam_runner_writes_the_in_process_dataset(datasets):
    local, beam = datasets
    report, beam_report = (json.loads((d / "prepare_report.json").read_text()) for d in (local, beam))
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


def test_beam_runner_refuses_bad_pipeline_options(tmp_path):
    with pytest.raises(ConfigError, match="NoSuchRunner"):
        prepare(GOLDEN / "shop", tmp_path / "beam", PrepareConfig(), beam_options=["--runner=NoSuchRunner"])
    assert not (tmp_path / "beam").exists()
