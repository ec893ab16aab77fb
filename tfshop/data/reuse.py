"""A new window of data prepared with an earlier dataset's vocabularies, for incremental training.

A model warm-started from an earlier training keeps its id lookups and numeric scaling only if the
new window is read with the same vocabularies, schema and statistics. Ids first seen in the new
window then fall into the out-of-vocabulary buckets (one shared row per feature) until the next
full retrain, which builds vocabularies from all the data again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tfshop.data.schema import Schema
from tfshop.errors import DataError


def reuse_vocabularies(folder: Path, new: Schema, stats: dict, previous: Path) -> tuple[Schema, dict, str]:
    """Replaces ``folder``'s vocabularies with ``previous``'s; returns ``previous``'s schema, ``stats``
    with ``previous``'s statistics, and a note."""
    if not (previous / "schema.json").is_file():
        raise DataError(f"prepare.vocab_from: {previous} is not a prepared dataset (no schema.json)")
    old = Schema.load(previous)
    new_features = [(f.name, f.kind) for f in new.features]
    old_features = [(f.name, f.kind) for f in old.features]
    if new_features != old_features:
        differ = sorted(set(new_features) ^ set(old_features))
        raise DataError(
            f"prepare.vocab_from: {previous} has other features than this data ({differ or 'order'}); "
            "prepare from scratch and retrain instead"
        )
    unseen = {
        f.name: len(_tokens(folder / f.vocab) - _tokens(previous / f.vocab))
        for f in new.features
        if f.vocab and f.vocab_size
    }
    shutil.rmtree(folder / "vocab")
    shutil.copytree(previous / "vocab", folder / "vocab")
    earlier = json.loads((previous / "stats.json").read_text())
    stats = {**stats, **{key: earlier[key] for key in ("numeric", "labels", "vocab")}}
    counts = ", ".join(f"{name} {n}" for name, n in unseen.items() if n)
    return (
        old,
        stats,
        f"vocabularies and statistics of {previous}; values new here map to OOV ({counts or 'none'})",
    )


def _tokens(path: Path) -> set[str]:
    return set(path.read_text(encoding="utf-8").split("\n")) - {""} if path.is_file() else set()
