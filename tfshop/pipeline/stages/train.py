"""The ``train`` stage: the multi-task model (or, in a next-item run, the next-item model) on the
run's dataset, in ``train/``."""

from tfshop.pipeline.registry import stage


@stage("train", "train the multi-task model", output=lambda run: run.train_dir / "model")
def train(run) -> None:
    if run.config.next_item is not None:
        from tfshop.pipeline import next_item

        next_item.train(run)
        return
    from tfshop.training.train import train

    train(run.dataset, run.train_dir, run.config.model, run.config.train)
