"""The ``simulate`` stage: the synthetic shop (``simulate:`` knobs) as the run's ``shop/``."""

from tfshop.pipeline.registry import stage


@stage("simulate", "write the synthetic shop", output=lambda run: run.shop)
def simulate(run) -> None:
    from tfshop.data.simulate import simulate

    simulate(run.config.simulate, run.shop, overwrite=True)
