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
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from tfshop.config import to_dict
from tfshop.data.pipeline import naming_corrupt_shards
from tfshop.data.schema import Schema
from tfshop.errors import ConfigError, TrainingError
from tfshop.layers.text import SentenceEncoder
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import build_model, with_retrieval_scores
from tfshop.training.cluster import is_chief, make_strategy
from tfshop.training.config import TrainConfig
from tfshop.training.divergence import non_finite_loss_guard
from tfshop.training.inputs import TrainingInputs, batches
from tfshop.training.optimizers import LazyAdam, TwoSpeedAdam
from tfshop.training.projector import write_item_projector
from tfshop.training.targets import Targets
from tfshop.training.uncertainty import UncertaintyWeighted
from tfshop.training.warm_start import item_embedding_from, warm_start

log = logging.getLogger(__name__)


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
    keras.utils.set_random_seed(config.seed)
    schema = schema or Schema.load(data_dir)
    strategy = make_strategy(config.strategy, config.cluster_timeout)
    chief = is_chief(strategy)
    if chief:
        out.mkdir(parents=True, exist_ok=True)
    targets = Targets(data_dir, schema, model_config)
    steps = config.steps_per_epoch or batches(data_dir, "train", config.batch_size)
    with strategy.scope():
        model, trainer = _build(data_dir, schema, targets, model_config, config)
        if config.warm_start:
            warm_start(model, config.warm_start)
        if model_config.item_embedding_from:
            item_embedding_from(model, schema, model_config.item_embedding_from)
        trainer.compile(
            optimizer=_optimizer(model, model_config, config, _learning_rate(config, steps)),
            steps_per_execution=config.steps_per_call,
            **targets.compile_args(),
        )
    inputs = TrainingInputs(data_dir, schema, targets, config, strategy)
    monitor = config.monitor or (_default_monitor(targets) if config.validation else "loss")
    started = time.time()
    with naming_corrupt_shards(data_dir):
        training_data, validation_data = inputs.train(), inputs.valid()
        if config.strategy != "parameter_server":
            with strategy.scope():
                _create_step_variables(trainer, training_data if validation_data is None else validation_data)
        history = trainer.fit(
            training_data,
            validation_data=validation_data,
            epochs=config.epochs,
            steps_per_epoch=steps if inputs.repeats else None,
            validation_steps=inputs.validation_steps,
            callbacks=_callbacks(out, monitor, config),
            verbose=config.verbose,
        )
    log.info("trained %d epochs in %.0fs", len(history.epoch), time.time() - started)
    if monitor not in history.history:
        known = ", ".join(k for k in history.history if k.startswith("val_") or not config.validation)
        raise ConfigError(f"train.monitor: {monitor!r} is not a metric of this training (known: {known})")
    if not chief:  # the chief holds the same weights and writes the run's files
        return model
    if config.strategy == "parameter_server":  # rebuilt with whole tables, so it saves like any other
        model, trainer = _build(data_dir, schema, targets, model_config, config)
    if not (out / "best" / "weights.index").exists():
        raise TrainingError(f"train: no epoch had a finite {monitor}, so no best weights were written")
    # the epoch with the best validation score; every weight must be found (the optimizer's need not)
    trainer.load_weights(str(out / "best" / "weights")).assert_existing_objects_matched().expect_partial()
    write_item_projector(model, data_dir, schema, out / "logs")
    _save(model, out, history, model_config, config, monitor, time.time() - started)
    return model


def _build(data_dir, schema, targets, model_config, config) -> tuple[keras.Model, keras.Model]:
    """The served model and the model that trains it (retrieval scores, learnt loss weights)."""
    model = build_model(data_dir, model_config, schema)
    trained = with_retrieval_scores(model, data_dir, schema, targets.tasks, model_config)
    if config.loss_weighting == "uncertainty":
        return model, UncertaintyWeighted(trained, targets.compile_args()["loss"])
    return model, trained


def _create_step_variables(trainer: keras.Model, dataset) -> None:
    """Creates the optimizer's slots and the loss and metric trackers before ``fit``, which
    otherwise traces its training step twice: once to create them, once to run."""
    trainer.optimizer.build(trainer.trainable_variables)
    features, targets, _ = tf.nest.map_structure(lambda column: column[:8], next(iter(dataset.take(1))))
    predictions = trainer(features, training=False)
    trainer.compiled_loss.build(predictions)
    trainer.compiled_metrics.build(predictions, targets)


def _learning_rate(config: TrainConfig, steps_per_epoch: int):
    if config.schedule == "constant":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(
        config.learning_rate, steps_per_epoch * config.epochs, alpha=0.05
    )


def _optimizer(model: keras.Model, model_config: ModelConfig, config: TrainConfig, learning_rate):
    """``train.optimizer``; with Adam, pretrained encoder weights that train get
    ``text_learning_rate_scale`` of its steps."""
    pretrained = [
        weight
        for layer in model.layers
        if isinstance(layer, SentenceEncoder)
        for weight in layer.trainable_weights
    ]
    if pretrained and config.optimizer != "adam":
        raise ConfigError(
            f"train.optimizer: {config.optimizer} cannot fine-tune the pretrained text encoder (its weights "
            "take model.text.learning_rate_scale of Adam's steps): use adam, or encoder_mode: frozen"
        )
    if config.optimizer == "adagrad":
        return keras.optimizers.Adagrad(learning_rate)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate)
    if not pretrained:
        return LazyAdam(learning_rate)
    log.info("fine-tuning %d pretrained text-encoder weights", len(pretrained))
    return TwoSpeedAdam(learning_rate, pretrained, model_config.text.learning_rate_scale)


def _default_monitor(targets: Targets) -> str:
    """Validation AUC of the first binary output (Keras drops the prefix for a lone output)."""
    kinds = targets.output_types()
    binary = [name for name, kind in kinds.items() if kind.name == "binary"]
    if not binary:
        return "val_loss"
    return "val_auc" if len(kinds) == 1 else f"val_{binary[0]}_auc"


def _callbacks(out: Path, monitor: str, config: TrainConfig) -> list:
    mode = "min" if monitor.endswith(("loss", "rmse")) else "max"
    callbacks = [
        non_finite_loss_guard(config.strategy),
        keras.callbacks.TensorBoard(out / "logs", histogram_freq=config.histogram_every, update_freq="epoch"),
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
    ]
    if config.backup:
        every = config.backup_every_steps or "epoch"
        callbacks.append(keras.callbacks.BackupAndRestore(str(out / "backup"), every, delete_checkpoint=True))
    return callbacks


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
