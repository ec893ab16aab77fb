"""Shared fixtures: a small simulated shop, its prepared dataset, and the real datasets folder."""

import os
from pathlib import Path

import pytest

import tfshop  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.simulate import SimulateConfig, simulate

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("TFSHOP_DATASETS", REPO.parent / "shared" / "datasets"))


def real_dataset(name: str) -> Path:
    """Path of a folder under the shared datasets; skips the test, saying why, if it is absent."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {path} is absent (set TFSHOP_DATASETS to its parent folder)")
    return path


SMALL_SHOP = SimulateConfig(events=60_000, items=600, seed=3, chunk_users=400)


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory) -> Path:
    return simulate(SMALL_SHOP, tmp_path_factory.mktemp("shop") / "shop")


@pytest.fixture(scope="session")
def small_dataset(small_shop, tmp_path_factory) -> Path:
    return prepare(small_shop, tmp_path_factory.mktemp("dataset") / "dataset", PrepareConfig(partitions=3))
