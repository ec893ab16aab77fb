"""Fine-tuning the pretrained text encoder inside the multi-task model, and the cross-encoder."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from safetensors.numpy import load_file

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema
from tfshop.errors import ConfigError
from tfshop.export.saved_model import export
from tfshop.export.verify import score_in_fresh_process
from tfshop.layers.text import pretrained_sentence_encoder
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import build_model
from tfshop.training.config import TrainConfig
from tfshop.training.optimizers import TwoSpeedAdam
from tfshop.training.train import train


def test_slow_variables_take_a_scaled_adam_step():
    fast, slow = tf.Variable([1.0, -2.0]), tf.Variable([1.0, -2.0])
    optimizer = TwoSpeedAdam(0.1, [slow], slow_scale=0.25)
    for _ in range(3):
        optimizer.apply_gradients([(tf.constant([0.5, -3.0]), fast), (tf.constant([0.5, -3.0]), slow)])
    moved_fast, moved_slow = fast.numpy() - [1.0, -2.0], slow.numpy() - [1.0, -2.0]
    assert np.all(np.abs(moved_fast) > 0.2)
    np.testing.assert_allclose(moved_slow, 0.25 * moved_fast, rtol=1e-5)
    with pytest.raises(ValueError, match="slow_scale"):
        TwoSpeedAdam(0.1, [slow], slow_scale=0.0)


def test_encoder_weights_round_trip_through_hugging_face_format(tiny_bert, tmp_path):
    encoder = pretrained_sentence_encoder(tiny_bert, 16).encoder
    encoder.save_hugging_face_weights(tmp_path / "model.safetensors")
    saved, original = load_file(tmp_path / "model.safetensors"), load_file(tiny_bert / "model.safetensors")
    assert saved.keys() == original.keys()
    for name, value in original.items():
        np.testing.assert_array_equal(saved[name], value, err_msg=name)


def trained_blocks(layer, checkpoint) -> list[bool]:
    """Per part of the encoder (embeddings, block 0, block 1): whether it moved from the checkpoint."""
    moved = [False] * 3
    for weight, name, transpose in layer.encoder.hugging_face_weights():
        value = checkpoint[name].T if transpose else checkpoint[name]
        part = 0 if name.startswith("embeddings.") else 1 + int(name.split(".")[2])
        moved[part] |= not np.array_equal(weight.numpy(), value)
    return moved


def test_top_blocks_fine_tune_with_a_cross_encoder_and_export(small_dataset, tiny_bert, tmp_path):
    config = ModelConfig.of(
        block="shared_bottom",
        tasks=["ctr", "relevance"],
        text_encoder=str(tiny_bert),
        text_encoder_mode="finetune_top_n",
        text_finetune_layers=1,
        pair_encoder="cross",
        text_max_length=24,
        exclude_features=["description"],
    )
    model = train(
        small_dataset,
        tmp_path / "run",
        config,
        TrainConfig(epochs=1, batch_size=64, steps_per_epoch=3, learning_rate=0.01, verbose=0),
    )
    assert isinstance(model.optimizer, TwoSpeedAdam) and model.optimizer.slow_scale == 0.1
    checkpoint = load_file(tiny_bert / "model.safetensors")
    for name in ("sentence_encoder", "relevance_cross_encoder"):
        assert trained_blocks(model.get_layer(name), checkpoint) == [False, False, True], name

    features, _ = next(
        iter(make_dataset(small_dataset, "test", InputConfig(batch_size=8, deterministic=True)))
    )
    inputs = {name: features[name].numpy() for name in model.input_names}
    expected = {k: v.numpy() for k, v in model(inputs).items()}
    path = export(model, Schema.load(small_dataset), tmp_path / "saved_models", "shop")
    served = score_in_fresh_process(path, inputs)
    for name in expected:
        np.testing.assert_allclose(served[name], expected[name], atol=1e-5, err_msg=name)


def test_full_fine_tuning_trains_every_encoder_weight(small_dataset, tiny_bert):
    config = ModelConfig.of(text_encoder=str(tiny_bert), text_encoder_mode="full", text_max_length=16)
    model = build_model(small_dataset, config)
    encoder = model.get_layer("sentence_encoder")
    assert len(encoder.trainable_weights) == len(encoder.encoder.weights) > 0
    frozen = build_model(small_dataset, ModelConfig.of(text_encoder=str(tiny_bert), text_max_length=16))
    assert not frozen.get_layer("sentence_encoder").trainable_weights


def test_bad_fine_tuning_configs_are_named(small_dataset, tiny_bert):
    with pytest.raises(
        ConfigError, match="model.text.encoder_mode: fine-tuning needs a pretrained text_encoder"
    ):
        ModelConfig.of(text_encoder_mode="full")
    with pytest.raises(ConfigError, match="model.text.pair_encoder: the cross-encoder needs a pretrained"):
        ModelConfig.of(pair_encoder="cross")
    too_many = ModelConfig.of(
        text_encoder=str(tiny_bert), text_encoder_mode="finetune_top_n", text_finetune_layers=5
    )
    with pytest.raises(ConfigError, match=r"trainable_layers: 5 is not in \[-1, 2\]"):
        build_model(small_dataset, too_many)
    with pytest.raises(ValueError, match="frozen"):
        pretrained_sentence_encoder(tiny_bert, 16, trainable_layers=1, cached_texts=["a"])
    assert keras.utils.get_registered_object("tfshop>SentenceEncoder") is not None
