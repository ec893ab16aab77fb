"""The ``evaluate`` stage: the test split scored by the model and the baselines, in ``eval/``."""

from tfshop.pipeline.registry import stage


@stage("evaluate", "evaluate on the test split", output=lambda run: run.eval_dir / "eval_report.json")
def evaluate(run) -> None:
    if run.config.next_item is not None:
        from tfshop.pipeline import next_item

        next_item.evaluate(run)
        return
    from tfshop.data.schema import Schema
    from tfshop.evaluation.evaluate import collect, evaluate, write_report
    from tfshop.evaluation.plots import write_plots
    from tfshop.models.saved import load_keras
    from tfshop.training.targets import Targets

    model = load_keras(run.train_dir / "model")
    singles = {
        p.name: load_keras(p / "model")
        for p in sorted((run.dir / "baselines").glob("*"))
        if (p / "model").is_dir()
    }
    schema = Schema.load(run.dataset)
    targets = Targets(run.dataset, schema, run.config.model)
    data = collect(model, run.dataset, "test", targets, schema)
    report = evaluate(run.dataset, model, run.config.model, singles, data=data)
    write_report(report, targets, run.eval_dir)
    binary = [name for name, kind in targets.output_types().items() if kind.name == "binary"]
    write_plots(run.eval_dir, run.train_dir / "history.json", data, binary)
