"""The ``train`` stage: the multi-task model on the run's dataset, in ``train/``."""

from tfshop.pipeline.registry import stage


@stage("train", "train the multi-task model", output=lambda run: run.train_dir / "model")
def train(run) -> None:
    from tfshop.training.train import train

    train(run.dataset, run.train_dir, run.config.model, run.config.train)
