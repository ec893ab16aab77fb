"""The ``prepare`` stage: the run's ``shop/`` (or the ``tabular:`` tables) as ``dataset/``: of
TFRecords, or of item sequences in a next-item run."""

from tfshop.pipeline.registry import stage


@stage("prepare", "shop (or tables) -> dataset of TFRecords", output=lambda run: run.dataset)
def prepare(run) -> None:
    if run.config.next_item is not None:
        from tfshop.pipeline import next_item

        next_item.prepare(run)
        return
    if run.config.tabular is not None:
        from tfshop.data.tabular import prepare_tabular

        prepare_tabular(run.config.tabular, run.dataset, overwrite=True)
        return
    from tfshop.data.prepare import prepare

    prepare(run.shop, run.dataset, run.config.prepare, overwrite=True)
