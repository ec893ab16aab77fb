"""The schema: one declarative description of every feature, label and task of a dataset.

``prepare`` writes it as ``schema.json``; the tf.data parser, the model's inputs and the serving
signatures all read it. Features carry **roles** (the item, the user, the query, a history of
items...): the model and evaluation find features by role, never by column name, so a table
with other column names gets the same model once its roles are declared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tfshop.config import from_dict, to_dict
from tfshop.errors import DataError

FeatureKind = Literal["id", "categorical", "numeric", "text", "sequence"]
Dtype = Literal["string", "int64", "float32"]

# What a feature is to the model, whatever its column is called.
ROLES = {
    "user_id": "the user (GAUC groups by it)",
    "item_id": "the candidate item: the retrieval positive, the catalogue's key",
    "item_category": "the candidate item's category",
    "item_title": "the candidate item's title (matched against the query)",
    "item": "any other field of the candidate item (in the catalogue, read by the item tower)",
    "query": "the search query's text",
}
# "history:<role>": a sequence of the values of the <role> feature the user acted on before the
# example, most recent last; DIN attention pools it with that feature as the query
HISTORY = "history:"
# the roles of the canonical columns (prepare's features; a table's columns of the same name)
CANONICAL_ROLES = {
    "user_id": ["user_id"],
    "item_id": ["item_id"],
    "category": ["item_category"],
    "title": ["item_title"],
    "query": ["query"],
    "top_category": ["item"],
    "brand": ["item"],
    "price": ["item"],
    "description": ["item"],
    "attributes": ["item"],
    "hist_item_ids": [HISTORY + "item_id"],
    "hist_categories": [HISTORY + "item_category"],
}
ITEM_ROLES = ("item_id", "item_category", "item_title", "item")


@dataclass
class Feature:
    """One model input column, stored raw in the TFRecords.

    ``id`` and ``categorical`` features map through ``vocab`` (a file under the dataset dir, plus
    ``num_oov_buckets``) or through ``hash_buckets``; ``sequence`` features are lists of ids of
    at most ``max_len`` (most recent last), padded with ``default``; ``text`` is a raw string.
    ``roles``: what the feature is to the model (``ROLES``, or ``history:<role>``).
    """

    name: str
    kind: FeatureKind
    dtype: Dtype = "string"
    default: str | float = ""
    vocab: str | None = None
    vocab_size: int = 0
    num_oov_buckets: int = 1
    hash_buckets: int = 0
    max_len: int = 0
    description: str = ""
    roles: list[str] = field(default_factory=list)

    def validate(self) -> None:
        for role in self.roles:
            if role.removeprefix(HISTORY) not in ROLES:
                raise ValueError(
                    f"{self.name}.roles: {role!r} is not one of {', '.join(ROLES)} (or history:<role>)"
                )
            if role.startswith(HISTORY) and self.kind != "sequence":
                raise ValueError(f"{self.name}.roles: a {role} feature is a sequence")
        if self.kind in ("id", "categorical", "sequence") and self.dtype != "string":
            raise ValueError(f"{self.name}: {self.kind} features are stored as strings")
        if self.kind == "numeric" and self.dtype == "string":
            raise ValueError(f"{self.name}: numeric features need dtype int64 or float32")
        if self.kind == "sequence" and self.max_len <= 0:
            raise ValueError(f"{self.name}: sequence features need max_len > 0")
        if self.vocab and self.hash_buckets:
            raise ValueError(f"{self.name}: use a vocabulary or hash buckets, not both")


@dataclass
class Label:
    """A target or ground-truth column stored next to the features (e.g. ``click``)."""

    name: str
    dtype: Dtype = "int64"
    default: str | float = 0.0
    description: str = ""


@dataclass
class Task:
    """A prediction task: its type (``tfshop.tasks``), the label it learns from and its loss weight.

    ``parent`` names the upstream funnel task: this task's loss uses only the rows where the
    parent's label is positive (its sample space), and ``p(this and parent)`` is
    ``p(parent) * p(this | parent)`` as in ESMM. ``inputs`` makes a *text task*: its head reads
    only these text features (e.g. the product category from title and description), so its
    label may be a feature column that the rest of the model sees as an input.
    ``multiclass`` and ``multilabel`` tasks name their classes in the ``vocab`` file.
    ``weight``: the loss weight the data asks for; None leaves it to the model config.
    """

    name: str
    type: str
    label: str
    weight: float | None = None
    parent: str | None = None
    num_classes: int = 0
    vocab: str | None = None
    inputs: list[str] = field(default_factory=list)

    def validate(self) -> None:
        from tfshop.tasks import TASK_TYPES

        if self.type not in TASK_TYPES:
            raise ValueError(f"{self.name}.type: {self.type!r} is not one of {', '.join(TASK_TYPES)}")
        if self.weight is not None and self.weight < 0:
            raise ValueError(f"{self.name}.weight: must be >= 0, got {self.weight}")
        if TASK_TYPES[self.type].has_classes and self.num_classes < 2:
            raise ValueError(f"{self.name}.num_classes: a {self.type} task needs at least 2")
        if TASK_TYPES[self.type].has_classes and not self.vocab:
            raise ValueError(f"{self.name}.vocab: a {self.type} task needs its class vocabulary file")


@dataclass
class Schema:
    """Features, labels and tasks of one prepared dataset."""

    features: list[Feature] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    version: int = 2

    def validate(self) -> None:
        names = [f.name for f in self.features] + [label.name for label in self.labels]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"features: duplicate column name {duplicates[0]!r}")
        labels = {label.name for label in self.labels}
        tasks = {t.name for t in self.tasks}
        if len(tasks) != len(self.tasks):
            raise ValueError("tasks: task names must be unique")
        text = {f.name for f in self.features if f.kind == "text"}
        features = {f.name for f in self.features}
        for task in self.tasks:
            if task.name in features:
                raise ValueError(f"tasks.{task.name}: a task may not share its name with a feature")
            if task.label not in labels and not (task.inputs and task.label in features):
                raise ValueError(
                    f"tasks.{task.name}.label: {task.label!r} is not a label column "
                    "(a feature column is a label only for a text task, one with inputs)"
                )
            for name in task.inputs:
                if name not in text:
                    raise ValueError(f"tasks.{task.name}.inputs: {name!r} is not a text feature")
            if task.parent is not None and task.parent not in tasks:
                raise ValueError(f"tasks.{task.name}.parent: no task named {task.parent!r}")
        roles = [(role, f.name) for f in self.features for role in f.roles if role != "item"]
        for role, name in roles:
            others = [n for r, n in roles if r == role and n != name]
            if others:
                raise ValueError(f"features.{name}.roles: {role!r} is also the role of {others[0]!r}")
            if role.startswith(HISTORY) and self.with_role(role.removeprefix(HISTORY)) is None:
                raise ValueError(f"features.{name}.roles: {role!r} needs a feature whose role is its target")

    def with_role(self, role: str) -> Feature | None:
        """The feature with ``role`` (``item`` aside, a role belongs to one feature), or None."""
        return next((f for f in self.features if role in f.roles), None)

    def name_of(self, role: str) -> str | None:
        feature = self.with_role(role)
        return None if feature is None else feature.name

    def shared_vocabularies(self) -> dict[str, str]:
        """History feature → the feature whose vocabulary it shares (its ids are that feature's)."""
        return {history.name: target.name for history, target in self.histories() if target is not None}

    def histories(self) -> list[tuple[Feature, Feature]]:
        """(history feature, the feature its values are of) for each ``history:<role>`` feature."""
        return [
            (f, self.with_role(role.removeprefix(HISTORY)))
            for f in self.features
            for role in f.roles
            if role.startswith(HISTORY)
        ]

    def feature(self, name: str) -> Feature:
        """The feature called ``name``; a DataError lists the known names otherwise."""
        for feature in self.features:
            if feature.name == name:
                return feature
        known = ", ".join(f.name for f in self.features)
        raise DataError(f"schema: no feature named {name!r} (features: {known})")

    def features_of_kind(self, *kinds: str) -> list[Feature]:
        return [f for f in self.features if f.kind in kinds]

    def to_json(self) -> str:
        return json.dumps(to_dict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "schema.json") -> Schema:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{where}: invalid JSON: {err}") from None
        if isinstance(data, dict) and data.get("version", 1) == 1:
            # version 1 wrote each type's loss and metrics, and had no roles (canonical names)
            for task in data.get("tasks", []):
                task.pop("loss", None), task.pop("metrics", None)
            for feature in data.get("features", []):
                feature.setdefault("roles", CANONICAL_ROLES.get(feature.get("name"), []))
        return from_dict(cls, data, where)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        path = Path(path)
        if path.is_dir():
            path = path / "schema.json"
        if not path.is_file():
            raise DataError(f"{path}: schema not found (is this a prepared dataset directory?)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text (is this a prepared dataset's schema.json?)") from None
        return cls.from_json(text, str(path))
