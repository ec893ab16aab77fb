"""The ``export`` stage: the trained model as the next version of a TF Serving SavedModel.

A model with a retrieval task also gets the ``retrieve`` signature, here and for every version
the incremental stage exports, so no served signature disappears from one version to the next.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tfshop.pipeline.registry import stage

log = logging.getLogger(__name__)


@dataclass
class ExportConfig:
    base: str = "saved_models"
    name: str = "tfshop"
    retrieve_k: int = 100  # items the retrieve signature returns per request (at most the candidates)
    retrieve_candidates: str = ""  # file of item ids (one a line) retrieve chooses from; "" = catalogue
    recommend_k: int = 10  # next-item runs: items the recommend signature returns
    allow_repeats: bool = False  # next-item runs: recommend may return items of the history

    def validate(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"name: {self.name!r} is not a model name (a folder name under base)")
        for name in ("retrieve_k", "recommend_k"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.retrieve_candidates and not Path(self.retrieve_candidates).is_file():
            raise ValueError(f"retrieve_candidates: {self.retrieve_candidates} is not a file")


@stage("export", "export a SavedModel", output=lambda run: run.dir / "export.json")
def export(run) -> None:
    if run.config.next_item is not None:
        from tfshop.pipeline import next_item

        next_item.export(run)
        return
    path = export_trained(run, run.train_dir, run.dataset)
    (run.dir / "export.json").write_text(json.dumps({"path": str(path)}) + "\n")
    print(f"exported {path}")


def export_trained(run, train_dir: Path, dataset: Path) -> Path:
    """Exports ``train_dir``'s model, trained on ``dataset``, as the next version; its path."""
    from tfshop.data.schema import Schema
    from tfshop.export.saved_model import export
    from tfshop.models.saved import load_keras
    from tfshop.pipeline.checks import sample_inputs

    model = load_keras(train_dir / "model")
    schema = Schema.load(dataset)
    path = export(
        model,
        schema,
        run.config.export.base,
        run.config.export.name,
        warmup=sample_inputs(dataset, model.input_names, "valid", 32),
        index=_retrieval_index(run.config, model, schema, dataset),
    )
    log.info("exported %s", path)
    return path


def retrieval_inputs(config, dataset: Path) -> tuple[list[str], list[str]] | None:
    """(query tower inputs, item tower inputs) of a model with a retrieval task, else None."""
    from tfshop.data.schema import Schema
    from tfshop.models.multitask import model_tasks, retrieval_task
    from tfshop.models.towers import tower_inputs

    schema = Schema.load(dataset)
    if retrieval_task(model_tasks(schema, config.model)) is None:
        return None
    names = [f.name for f in config.model.input_features(schema)]
    return tower_inputs(names, dataset, config.model)


def _retrieval_index(config, model, schema, dataset: Path):
    from tfshop.data.catalogue import read_catalogue
    from tfshop.export.saved_model import RetrievalIndex

    towers = retrieval_inputs(config, dataset)
    if towers is None:
        return None
    file = config.export.retrieve_candidates
    candidates = Path(file).read_text(encoding="utf-8").split() if file else None
    return RetrievalIndex(
        model, schema, read_catalogue(dataset), *towers, config.export.retrieve_k, candidates
    )
