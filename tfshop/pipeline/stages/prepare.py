"""The ``prepare`` stage: the run's ``shop/`` (or the ``tabular:`` tables) as ``dataset/``."""

from tfshop.pipeline.registry import stage


@stage("prepare", "shop (or tables) -> dataset of TFRecords", output=lambda run: run.dataset)
def prepare(run) -> None:
    if run.config.tabular is not None:
        from tfshop.data.tabular import prepare_tabular

        prepare_tabular(run.config.tabular, run.dataset, overwrite=True)
        return
    from tfshop.data.prepare import prepare

    prepare(run.shop, run.dataset, run.config.prepare, overwrite=True)
