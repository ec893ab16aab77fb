"""Training on the small simulated shop: save → reload, learnt loss weights."""

import json

import numpy as np
import pytest

from tests.conftest import TEXT_TASKS
from tfshop.errors import TrainingError
from tfshop.models.config import ModelConfig
from tfshop.models.saved import load_keras
from tfshop.pipeline.checks import sample_inputs
from tfshop.training.config import TrainConfig
from tfshop.training.divergence import non_finite_loss_guard
from tfshop.training.train import train


def test_save_reload_identical(small_dataset, trained_mmoe):
    """The whole model (every block's save/load is tested in tests/layers/test_round_trip.py)."""
    model, run = trained_mmoe
    reloaded = load_keras(run / "model")
    inputs = sample_inputs(small_dataset, model.input_names, "test", 16)
    before, after = model(inputs), reloaded(inputs)
    assert set(before) == {"ctr", "cvr", "rating", "intent", *TEXT_TASKS, "ctcvr"}
    for name in before:
        np.testing.assert_allclose(before[name].numpy(), after[name].numpy(), atol=1e-6)
    np.testing.assert_allclose(before["ctcvr"].numpy(), (before["ctr"] * before["cvr"]).numpy(), rtol=1e-6)
    history = json.loads((run / "history.json").read_text())
    assert history["monitor"] == "val_ctr_auc" and "val_cvr_auc" in history["epochs"]


def test_learned_uncertainty_weights(small_dataset, tmp_path):
    config = TrainConfig(
        epochs=2, batch_size=256, steps_per_epoch=10, verbose=0, loss_weighting="uncertainty"
    )
    model = train(small_dataset, tmp_path / "run", ModelConfig(block="shared_bottom"), config)
    epochs = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    weights = {k: v for k, v in epochs.items() if k.startswith("weight_")}
    outputs = ("ctr", "cvr", "rating", "intent", *TEXT_TASKS, "ctcvr", "retrieval")
    assert set(weights) == {f"weight_{o}" for o in outputs}
    assert any(abs(v[-1] - 1.0) > 1e-3 for v in weights.values())  # the weights were learnt
    assert "val_ctr_auc" in epochs and "objective" in epochs
    assert not any("log_var" in w.name for w in load_keras(tmp_path / "run" / "model").weights)
    assert set(model.output_names) == {"ctr", "cvr", "rating", "intent", *TEXT_TASKS, "ctcvr"}


def test_parameter_server_runs_check_the_loss_each_epoch():
    guard = non_finite_loss_guard("parameter_server")
    assert not guard._implements_train_batch_hooks()  # parameter servers refuse batch callbacks
    guard.on_epoch_end(0, {"loss": 0.5, "ctr_loss": 0.4, "val_ctr_loss": float("nan")})
    with pytest.raises(TrainingError, match=r"the loss of ctr, cvr became nan at epoch 2: look for"):
        guard.on_epoch_end(1, {"loss": float("nan"), "ctr_loss": float("nan"), "cvr_loss": float("inf")})
    assert non_finite_loss_guard("default")._implements_train_batch_hooks()


def test_the_batch_guard_names_the_batches_of_one_call_into_the_graph():
    guard = non_finite_loss_guard("default")
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(31, {"loss": 0.5})  # steps_per_execution 32: one call per 32 batches
    with pytest.raises(TrainingError, match=r"the loss of cvr became inf at epoch 3, batches 33-64: look"):
        guard.on_train_batch_end(63, {"loss": float("inf"), "ctr_loss": 0.1, "cvr_loss": float("inf")})
    guard.on_epoch_begin(3)
    with pytest.raises(TrainingError, match=r"at epoch 4, batch 1: look"):
        guard.on_train_batch_end(0, {"loss": float("nan")})


def test_adagrad_trains_the_model(small_dataset, tmp_path):
    config = TrainConfig(
        epochs=2, batch_size=256, steps_per_epoch=10, learning_rate=0.1, optimizer="adagrad", verbose=0
    )
    train(small_dataset, tmp_path / "run", ModelConfig(block="shared_bottom", tasks=["ctr"]), config)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    assert history["loss"][1] < history["loss"][0]
    assert json.loads((tmp_path / "run" / "model_config.json").read_text())["train"]["optimizer"] == "adagrad"


def test_training_without_validation_keeps_the_epoch_of_lowest_training_loss(small_dataset, tmp_path):
    config = TrainConfig(epochs=2, batch_size=256, steps_per_epoch=10, validation=False, verbose=0)
    train(small_dataset, tmp_path / "run", ModelConfig(block="shared_bottom", tasks=["ctr"]), config)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history["monitor"] == "loss" and len(history["epochs"]["loss"]) == 2
    assert not [key for key in history["epochs"] if key.startswith("val_")]
    assert (tmp_path / "run" / "best" / "weights.index").exists()
    with pytest.raises(ValueError, match="val_ctr_auc needs validation: true"):
        TrainConfig(validation=False, monitor="val_ctr_auc").validate()
