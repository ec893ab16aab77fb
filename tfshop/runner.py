"""Runs the pipeline's stages in one run directory, each skippable and resumable.

A stage whose output already exists is skipped (``force`` redoes it); stages talk only through
files in the run directory. Stage timings are printed at the end.

Run directory: ``shop/``, ``dataset/``, ``train/`` (model, logs, history), ``baselines/<output>/``
(single-task models), ``eval/`` (report and plots), ``export.json`` (where the SavedModel went).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from tfshop.config import from_dict, load_yaml
from tfshop.data.pipeline import InputConfig
from tfshop.data.prepare import PrepareConfig
from tfshop.data.simulate import SimulateConfig
from tfshop.data.tabular import TabularConfig
from tfshop.incremental import IncrementalConfig, run_incremental
from tfshop.models.config import ModelConfig
from tfshop.models.saved import load_keras
from tfshop.training.train import TrainConfig

log = logging.getLogger(__name__)
Stage = Literal[
    "simulate", "prepare", "read", "train", "baselines", "evaluate", "export", "score", "serve", "incremental"
]
STAGES: tuple[str, ...] = (
    "simulate",
    "prepare",
    "train",
    "baselines",
    "evaluate",
    "export",
    "score",
    "serve",
)


@dataclass
class ExportConfig:
    base: str = "saved_models"
    name: str = "tfshop"
    retrieve_k: int = 100  # items the retrieve signature returns per request (at most the candidates)
    retrieve_candidates: str = ""  # file of item ids (one a line) retrieve chooses from; "" = catalogue


@dataclass
class PipelineConfig:
    """A whole run: where it lives, which stages run, and each stage's knobs."""

    run_dir: str = "runs/demo"
    stages: list[Stage] = field(default_factory=lambda: list(STAGES))
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: list[str] = field(default_factory=lambda: ["ctr", "cvr", "ctcvr"])
    export: ExportConfig = field(default_factory=ExportConfig)
    tabular: TabularConfig | None = None  # a table of examples instead of a shop's events
    incremental: IncrementalConfig = field(default_factory=IncrementalConfig)  # the incremental stage

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Reads a config; tabular file paths are taken relative to the config file."""
        config = from_dict(cls, load_yaml(path), str(path))
        if config.tabular is not None:
            base = Path(path).parent
            for split in ("train", "valid", "test"):
                value = getattr(config.tabular, split)
                if value:
                    setattr(config.tabular, split, str(base / value))
        return config


class Run:
    """The stages of one pipeline config over its run directory."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.dir = Path(config.run_dir)
        self.shop, self.dataset = self.dir / "shop", self.dir / "dataset"
        self.train_dir, self.eval_dir = self.dir / "train", self.dir / "eval"

    def outputs(self) -> dict[str, Path | None]:
        return {
            "simulate": self.shop,
            "prepare": self.dataset,
            "read": None,
            "train": self.train_dir / "model",
            "baselines": self.dir / "baselines" / "done",
            "evaluate": self.eval_dir / "eval_report.json",
            "export": self.dir / "export.json",
            "score": None,
            "serve": None,
            "incremental": self.dir / "incremental" / "incremental.json",
        }

    def simulate(self) -> None:
        from tfshop.data.simulate import simulate

        simulate(self.config.simulate, self.shop, overwrite=True)

    def prepare(self) -> None:
        if self.config.tabular is not None:
            from tfshop.data.tabular import prepare_tabular

            prepare_tabular(self.config.tabular, self.dataset, overwrite=True)
            return
        from tfshop.data.prepare import prepare

        prepare(self.shop, self.dataset, self.config.prepare, overwrite=True)

    def read(self) -> None:
        read_summary(self.dataset, self.config.input)

    def train(self) -> None:
        from tfshop.training.train import train

        train(self.dataset, self.train_dir, self.config.model, self.config.train)

    def baselines(self) -> None:
        from tfshop.data.schema import Schema
        from tfshop.evaluation.evaluate import single_task_config
        from tfshop.training.train import train

        schema = Schema.load(self.dataset)
        for output in self._baseline_outputs(schema):
            config, single_schema = single_task_config(self.config.model, output, schema)
            log.info("baseline: single-task %s", output)
            train(self.dataset, self.dir / "baselines" / output, config, self.config.train, single_schema)
        (self.dir / "baselines" / "done").write_text("\n")

    def _baseline_outputs(self, schema) -> list[str]:
        from tfshop.models.multitask import output_names

        available = output_names(schema, self.config.model)
        return [o for o in self.config.baselines if o in available]

    def evaluate(self) -> None:
        from tfshop.data.schema import Schema
        from tfshop.evaluation.evaluate import collect, evaluate, write_report
        from tfshop.evaluation.plots import write_plots
        from tfshop.training.targets import Targets

        model = load_keras(self.train_dir / "model")
        singles = {
            p.name: load_keras(p / "model")
            for p in sorted((self.dir / "baselines").glob("*"))
            if (p / "model").is_dir()
        }
        schema = Schema.load(self.dataset)
        targets = Targets(self.dataset, schema, self.config.model)
        data = collect(model, self.dataset, "test", targets, schema)
        report = evaluate(self.dataset, model, self.config.model, singles, data=data)
        write_report(report, targets, self.eval_dir)
        binary = [name for name, kind in targets.output_types().items() if kind.name == "binary"]
        write_plots(self.eval_dir, self.train_dir / "history.json", data, binary)

    def export(self) -> None:
        from tfshop.data.schema import Schema
        from tfshop.export.saved_model import export

        model = load_keras(self.train_dir / "model")
        schema = Schema.load(self.dataset)
        path = export(
            model,
            schema,
            self.config.export.base,
            self.config.export.name,
            warmup=sample_inputs(self.dataset, model.input_names, "valid", 32),
            index=self._retrieval_index(model, schema),
        )
        (self.dir / "export.json").write_text(json.dumps({"path": str(path)}) + "\n")
        print(f"exported {path}")

    def _retrieval_index(self, model, schema):
        from tfshop.data.catalogue import read_catalogue
        from tfshop.export.saved_model import RetrievalIndex

        towers = self._retrieval_inputs()
        if towers is None:
            return None
        query_names, item_names = towers
        file = self.config.export.retrieve_candidates
        candidates = Path(file).read_text(encoding="utf-8").split() if file else None
        return RetrievalIndex(
            model,
            schema,
            read_catalogue(self.dataset),
            query_names,
            item_names,
            self.config.export.retrieve_k,
            candidates,
        )

    def score(self) -> None:
        score_real_requests(self)
        towers = self._retrieval_inputs()
        if towers is not None:
            retrieve_real_requests(self, towers[0])

    def _retrieval_inputs(self) -> tuple[list[str], list[str]] | None:
        """(query tower inputs, item tower inputs) of a model with a retrieval task, else None."""
        from tfshop.data.schema import Schema
        from tfshop.models.multitask import model_tasks, retrieval_task
        from tfshop.models.towers import tower_inputs

        schema = Schema.load(self.dataset)
        if retrieval_task(model_tasks(schema, self.config.model)) is None:
            return None
        names = [f.name for f in schema.features if f.name not in self.config.model.exclude_features]
        return tower_inputs(names, self.dataset, self.config.model)

    def serve(self) -> None:
        serve_real_requests(self)

    def incremental(self) -> None:
        run_incremental(self)


def run_pipeline(config: PipelineConfig, force: bool = False) -> dict[str, float]:
    """Runs the configured stages in order; returns seconds per stage (0 when skipped)."""
    run = Run(config)
    run.dir.mkdir(parents=True, exist_ok=True)
    outputs = run.outputs()
    timings = {}
    for stage in config.stages:
        output = outputs[stage]
        if output is not None and output.exists() and not force:
            log.info("stage %s: %s exists, skipped (use --force to redo)", stage, output)
            timings[stage] = 0.0
            continue
        started = time.time()
        log.info("stage %s: started", stage)
        getattr(run, stage)()
        timings[stage] = time.time() - started
    print("\nstage timings:")
    for stage, seconds in timings.items():
        print(f"  {stage:<10} {seconds:8.1f}s" + ("  (skipped)" if seconds == 0 else ""))
    if (run.eval_dir / "eval_report.md").exists():
        print(f"\ntest-split results ({run.eval_dir / 'eval_report.md'}):")
        print((run.eval_dir / "eval_report.md").read_text())
        print(f"model: {run.train_dir / 'model'}   plots: {run.eval_dir}")
        print(f"TensorBoard: tensorboard --logdir {run.train_dir / 'logs'}")
    return timings


def sample_inputs(dataset: Path, names: list[str], split: str, rows: int) -> dict[str, np.ndarray]:
    """The first ``rows`` rows of a split as raw inputs ``names`` (e.g. a model's input names)."""
    from tfshop.data.pipeline import make_dataset

    features, _ = next(iter(make_dataset(dataset, split, InputConfig(batch_size=rows, deterministic=True))))
    return {name: features[name].numpy() for name in names}


def score_real_requests(run: Run, rows: int = 5) -> None:
    """Scores test rows with the export in a fresh process and checks the in-memory scores."""
    from tfshop.export.verify import score_in_fresh_process

    export, inputs, expected = _exported_and_expected(run, rows)
    served = score_in_fresh_process(export, inputs)
    worst = _check_same_scores(served, expected, str(export))
    print(
        f"\nscored {rows} test rows with {export} in a fresh TensorFlow process "
        f"(max difference to the in-memory model {worst:.1e}):"
    )
    names = [k for k in sorted(served) if served[k].shape[-1] == 1]
    print(f"  {'item':>8}" + "".join(f"{n:>10}" for n in names))
    for i in range(rows):
        print(f"  {_row_label(inputs, i):>8}" + "".join(f"{served[n][i, 0]:>10.4f}" for n in names))


def retrieve_real_requests(run: Run, query_names: list[str], rows: int = 3, shown: int = 5) -> None:
    """Asks the export's ``retrieve`` signature, in a fresh process, for the items of test users."""
    from tfshop.export.verify import score_in_fresh_process

    export = Path(json.loads((run.dir / "export.json").read_text())["path"])
    inputs = sample_inputs(run.dataset, query_names, "test", rows)
    answer = score_in_fresh_process(export, inputs, signature="retrieve")
    print(
        f"\nretrieve: top {answer['item_ids'].shape[1]} of the catalogue (first {shown}) for {rows} test rows"
    )
    for i in range(rows):
        items = ", ".join(
            f"{item.decode()} ({score:.2f})"
            for item, score in zip(answer["item_ids"][i][:shown], answer["scores"][i])
        )
        print(f"  row {i}: {items}")


def serve_real_requests(run: Run, rows: int = 5) -> None:
    """Serves the export with ``tfshop serve`` and queries it over REST and gRPC with the client."""
    from tfshop.serving.client import connect
    from tfshop.serving.process import server_process

    export, inputs, expected = _exported_and_expected(run, rows)
    name, version = export.parent.name, int(export.name)
    with server_process(export.parent, name, run.dir / "serve.log") as (rest_url, grpc_url):
        print(f"\nserving {export.parent} as {name!r}: REST {rest_url}, gRPC {grpc_url}")
        answers = {}
        for url in (rest_url, grpc_url):
            with connect(url, name) as client:
                client.wait_until_available(version)
                answers[url.split(":")[0]] = client.predict(inputs, version=version)
    for protocol, served in answers.items():
        _check_same_scores(served, expected, protocol)
    names = [k for k in sorted(expected) if expected[k].shape[-1] == 1]
    print(f"scores of {rows} test rows, as served (version {version}) over each protocol:")
    print(f"  {'item':>8} {'via':>5}" + "".join(f"{n:>10}" for n in names))
    for i in range(rows):
        for protocol, served in answers.items():
            print(
                f"  {_row_label(inputs, i):>8} {protocol:>5}"
                + "".join(f"{served[n][i, 0]:>10.4f}" for n in names)
            )
    print("server stopped; start it yourself with:")
    print(f"  tfshop serve --model_name {name} --model_base_path {export.parent} \\")
    print("      --rest_api_port 8501 --port 8500")


def _exported_and_expected(run: Run, rows: int):
    """The run's export, ``rows`` test rows as raw inputs, and the trained model's scores of them."""
    export = Path(json.loads((run.dir / "export.json").read_text())["path"])
    model = load_keras(run.train_dir / "model")
    inputs = sample_inputs(run.dataset, model.input_names, "test", rows)
    return export, inputs, {k: v.numpy() for k, v in model(inputs, training=False).items()}


def _check_same_scores(served: dict, expected: dict, source: str) -> float:
    """The largest difference between served and expected scores; above 1e-5 it is an error."""
    from tfshop.errors import TfshopError

    worst = max(float(np.max(np.abs(served[k] - expected[k]))) for k in expected)
    if worst > 1e-5:
        raise TfshopError(f"{source}: served scores differ from the trained model's by {worst:.2e}")
    return worst


def _row_label(inputs: dict, i: int) -> str:
    return inputs["item_id"][i].decode() if "item_id" in inputs else str(i)


def read_summary(dataset: Path, input_config: InputConfig) -> dict[str, dict[str, float]]:
    """Reads every split through the tf.data pipeline and prints rows and label rates."""
    from tfshop.data.pipeline import make_dataset
    from tfshop.data.schema import Schema

    schema = Schema.load(dataset)
    summary = {}
    print(
        f"\ndataset {dataset}: {len(schema.features)} features, tasks "
        f"{', '.join(t.name for t in schema.tasks) or 'none'}"
    )
    print(f"  {'split':<6} {'rows':>10} {'click':>8} {'purchase':>9} {'rows/s':>10}")
    for split in ("train", "valid", "test"):
        started, rows, clicks, purchases = time.time(), 0, 0, 0
        for _, labels in make_dataset(dataset, split, input_config, schema):
            rows += int(labels["click"].shape[0])
            clicks += int(labels["click"].numpy().sum())
            purchases += int(labels["purchase"].numpy().sum())
        rate = rows / max(time.time() - started, 1e-9)
        summary[split] = {
            "rows": rows,
            "click_rate": clicks / max(rows, 1),
            "purchase_rate": purchases / max(rows, 1),
        }
        print(
            f"  {split:<6} {rows:>10} {clicks / max(rows, 1):>8.2%} {purchases / max(rows, 1):>9.3%} "
            f"{rate:>10,.0f}"
        )
    return summary
