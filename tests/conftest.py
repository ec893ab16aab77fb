"""Shared fixtures: a small simulated shop, its prepared dataset, a tiny BERT, the real datasets folder."""

import json
import os
import shutil
from pathlib import Path

import pytest

import tfshop  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.simulate import SimulateConfig, simulate
from tfshop.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("TFSHOP_DATASETS", REPO.parent / "shared" / "datasets"))


def real_dataset(name: str) -> Path:
    """Path of a folder under the shared datasets; skips the test, saying why, if it is absent."""
    path = DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {path} is absent (set TFSHOP_DATASETS to its parent folder)")
    return path


TEXT_TASKS = ("item_category", "item_attributes", "relevance")  # the simulated shop's text tasks
SMALL_SHOP = SimulateConfig(events=60_000, items=600, seed=3, chunk_users=400)


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory) -> Path:
    return simulate(SMALL_SHOP, tmp_path_factory.mktemp("shop") / "shop")


@pytest.fixture(scope="session")
def small_dataset(small_shop, tmp_path_factory) -> Path:
    return prepare(small_shop, tmp_path_factory.mktemp("dataset") / "dataset", PrepareConfig(partitions=3))


QUICK = TrainConfig(epochs=1, batch_size=256, steps_per_epoch=30, verbose=0)


@pytest.fixture(scope="session")
def trained_mmoe(small_dataset, tmp_path_factory):
    """One quickly trained MMoE model (all tasks) and its run directory, shared by every test
    that needs a trained model but not a good one (save/load, export, serving)."""
    from tfshop.models.config import ModelConfig
    from tfshop.training.train import train

    run = tmp_path_factory.mktemp("mmoe")
    return train(small_dataset, run, ModelConfig(block="mmoe"), QUICK), run


TINY_BERT = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-block, 32-wide BERT with random weights, as a Hugging Face directory (MiniLM's vocabulary)."""
    import tensorflow as tf

    from tfshop.layers.bert import BertConfig, BertEncoder
    from tfshop.layers.text import default_encoder_dir

    folder = tmp_path_factory.mktemp("tiny_bert")
    for name in ("vocab.txt", "tokenizer_config.json"):
        shutil.copy(default_encoder_dir() / name, folder)
    config = {**TINY_BERT, "intermediate_size": 64, "max_position_embeddings": 128}
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", **config}))
    encoder = BertEncoder(BertConfig(**config).__dict__)
    ones = tf.ones([1, 2], tf.int64)
    encoder({"input_ids": ones, "attention_mask": ones, "token_type_ids": tf.zeros_like(ones)})
    encoder.save_hugging_face_weights(folder / "model.safetensors")
    return folder
