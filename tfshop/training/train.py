"""The ``train`` stage: fit the multi-task model on a prepared dataset and save it.

Writes into ``out``: ``model/`` (Keras SavedModel), ``history.json`` (per-epoch losses and
metrics), ``model_config.json``, TensorBoard logs under ``logs/`` (each output's loss and
metric as its own scalar, weight histograms), the best weights under ``best/`` and a
BackupAndRestore directory so a killed run resumes from its last epoch, and the item embedding
for TensorBoard's projector, labelled with item titles.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tensorflow as tf
import tf_keras as keras

from tfshop.config import to_dict
from tfshop.data.pipeline import InputConfig, make_dataset
from tfshop.data.schema import Schema
from tfshop.errors import ConfigError
from tfshop.layers.text import SentenceEncoder
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import build_model, with_retrieval_scores
from tfshop.training.optimizers import TwoSpeedAdam
from tfshop.training.projector import write_item_projector
from tfshop.training.targets import Targets
from tfshop.training.uncertainty import UncertaintyWeighted

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Optimisation and callbacks."""

    epochs: int = 3
    batch_size: int = 1024
    learning_rate: float = 0.002
    schedule: Literal["constant", "cosine"] = "cosine"
    monitor: str = ""  # e.g. val_ctr_auc; empty = the validation AUC of the first binary output
    early_stopping_patience: int = 2
    shuffle_buffer: int = 50_000
    steps_per_epoch: int = 0  # 0 = one pass over the train split
    strategy: Literal["default", "mirrored"] = "default"
    loss_weighting: Literal["fixed", "uncertainty"] = "fixed"  # uncertainty: learnt per-output weights
    seed: int = 0
    verbose: int = 2

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "shuffle_buffer"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.learning_rate <= 0:
            raise ValueError("learning_rate: must be positive")


def train(
    data_dir: str | Path,
    out: str | Path,
    model_config: ModelConfig | None = None,
    config: TrainConfig | None = None,
    schema: Schema | None = None,
) -> keras.Model:
    """Trains on ``data_dir``'s train split, validates on valid, saves into ``out``.

    ``schema`` overrides the dataset's own (to train tasks derived from it, e.g. baselines).
    """
    model_config, config = model_config or ModelConfig(), config or TrainConfig()
    data_dir, out = Path(data_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    schema = schema or Schema.load(data_dir)
    strategy = (
        tf.distribute.MirroredStrategy() if config.strategy == "mirrored" else tf.distribute.get_strategy()
    )
    with strategy.scope():
        model = build_model(data_dir, model_config, schema)
        targets = Targets(data_dir, schema, model_config)
        trained = with_retrieval_scores(model, data_dir, schema, targets.tasks, model_config)
        steps = config.steps_per_epoch or _steps(data_dir, config.batch_size)
        compile_args = targets.compile_args()
        trainer = (
            UncertaintyWeighted(trained, compile_args["loss"])
            if config.loss_weighting == "uncertainty"
            else trained
        )
        trainer.compile(
            optimizer=_optimizer(model, model_config, _learning_rate(config, steps)), **compile_args
        )
    train_ds = make_dataset(
        data_dir,
        "train",
        InputConfig(
            batch_size=config.batch_size,
            shuffle=True,
            shuffle_buffer=config.shuffle_buffer,
            seed=config.seed,
            repeat=bool(config.steps_per_epoch),
        ),
        schema,
    )
    valid_ds = make_dataset(data_dir, "valid", InputConfig(batch_size=4096), schema)
    monitor = config.monitor or _default_monitor(targets)
    started = time.time()
    history = trainer.fit(
        train_ds.map(targets, num_parallel_calls=tf.data.AUTOTUNE),
        validation_data=valid_ds.map(targets, num_parallel_calls=tf.data.AUTOTUNE),
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch or None,
        callbacks=_callbacks(out, monitor, config),
        verbose=config.verbose,
    )
    log.info("trained %d epochs in %.0fs", len(history.epoch), time.time() - started)
    if monitor not in history.history:
        known = ", ".join(k for k in history.history if k.startswith("val_"))
        raise ConfigError(f"train.monitor: {monitor!r} is not a validation metric (known: {known})")
    trainer.load_weights(str(out / "best" / "weights"))  # the epoch with the best validation score
    write_item_projector(model, data_dir, schema, out / "logs")
    _save(model, out, history, model_config, config, monitor, time.time() - started)
    return model


def _steps(data_dir: Path, batch_size: int) -> int:
    report = json.loads((data_dir / "prepare_report.json").read_text())
    return max(1, -(-report["examples"]["train"] // batch_size))


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.schedule == "constant":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, steps_per_epoch * config.epochs, alpha=0.05
    )


def _optimizer(model: keras.Model, model_config: ModelConfig, learning_rate) -> keras.optimizers.Optimizer:
    """Adam; pretrained encoder weights that train get ``text_learning_rate_scale`` of its steps."""
    pretrained = [
        weight
        for layer in model.layers
        if isinstance(layer, SentenceEncoder)
        for weight in layer.trainable_weights
    ]
    if not pretrained:
        return keras.optimizers.Adam(learning_rate)
    log.info("fine-tuning %d pretrained text-encoder weights", len(pretrained))
    return TwoSpeedAdam(learning_rate, pretrained, model_config.text_learning_rate_scale)


def _default_monitor(targets: Targets) -> str:
    """Validation AUC of the first binary output (Keras drops the prefix for a lone output)."""
    kinds = targets.output_types()
    binary = [name for name, kind in kinds.items() if kind == "binary"]
    if not binary:
        return "val_loss"
    return "val_auc" if len(kinds) == 1 else f"val_{binary[0]}_auc"


def _callbacks(out: Path, monitor: str, config: TrainConfig) -> list:
    mode = "min" if monitor.endswith(("loss", "rmse")) else "max"
    return [
        keras.callbacks.TensorBoard(out / "logs", histogram_freq=1, update_freq="epoch"),
        keras.callbacks.ModelCheckpoint(
            str(out / "best" / "weights"),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=config.early_stopping_patience, restore_best_weights=True
        ),
        keras.callbacks.BackupAndRestore(str(out / "backup")),
    ]


def _save(model, out: Path, history, model_config, config, monitor, seconds) -> None:
    target = out / "model"
    shutil.rmtree(target, ignore_errors=True)
    model.save(str(target), save_format="tf", include_optimizer=False, save_traces=False)
    logs = {key: [float(v) for v in values] for key, values in history.history.items()}
    (out / "history.json").write_text(
        json.dumps({"monitor": monitor, "seconds": round(seconds, 1), "epochs": logs}, indent=2) + "\n"
    )
    (out / "model_config.json").write_text(
        json.dumps({"model": to_dict(model_config), "train": to_dict(config)}, indent=2) + "\n"
    )
