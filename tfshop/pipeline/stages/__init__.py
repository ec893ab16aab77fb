"""The pipeline's stages, one module each; importing them registers them, in pipeline order."""

import importlib

MODULES = (
    "simulate",
    "ingest",
    "prepare",
    "read",
    "pretrain",
    "train",
    "baselines",
    "evaluate",
    "export",
    "score",
    "serve",
    "incremental",
)
for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
