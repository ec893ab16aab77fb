"""The ``baselines`` stage: one single-task model per output named in ``baselines:``."""

import logging

from tfshop.errors import ConfigError
from tfshop.pipeline.registry import stage

log = logging.getLogger(__name__)


@stage("baselines", "train single-task baselines", output=lambda run: run.dir / "baselines" / "done")
def baselines(run) -> None:
    if run.config.next_item is not None:
        raise ConfigError("stage baselines: trains single-task multi-task models; a next-item run has none")
    from tfshop.data.schema import Schema
    from tfshop.evaluation.evaluate import single_task_config
    from tfshop.models.multitask import output_names
    from tfshop.training.train import train

    schema = Schema.load(run.dataset)
    available = output_names(schema, run.config.model)
    for output in [o for o in run.config.baselines if o in available]:
        config, single_schema = single_task_config(run.config.model, output, schema)
        log.info("baseline: single-task %s", output)
        train(run.dataset, run.dir / "baselines" / output, config, run.config.train, single_schema)
    (run.dir / "baselines" / "done").write_text("\n")
