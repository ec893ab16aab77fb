"""The model finds features by role: a table with other column names gets the same model."""

import numpy as np
import pandas as pd
import pytest

from tfshop.config import from_dict
from tfshop.data.schema import Schema
from tfshop.data.tabular import TabularConfig, prepare_tabular
from tfshop.models.config import ModelConfig
from tfshop.models.multitask import build_model

RENAMED = {
    "user_id": "uid",
    "item_id": "sku",
    "category": "cat_path",
    "price": "cost",
    "title": "product_name",
    "query": "search_text",
    "hist_item_ids": "past_skus",
    "hist_categories": "past_cats",
    "click": "clicked",
}
KINDS = {
    "user_id": "id",
    "item_id": "id",
    "category": "categorical",
    "price": "numeric",
    "title": "text",
    "query": "text",
    "hist_item_ids": "sequence",
    "hist_categories": "sequence",
}
ROLES = {  # what a user declares for the renamed table
    "user_id": ["user_id"],
    "item_id": ["item_id"],
    "category": ["item_category"],
    "price": ["item"],
    "title": ["item_title"],
    "query": ["query"],
    "hist_item_ids": ["history:item_id"],
    "hist_categories": ["history:item_category"],
}
STRUCTURE = ["history_attention", "history_item_match", "query_title_match", "query_vector", "item_vector"]


def shop_rows(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    items = [f"i{k}" for k in range(30)]
    category = {item: f"c{k % 5}" for k, item in enumerate(items)}
    rows = []
    for _ in range(n):
        item = items[rng.integers(30)]
        past = [items[k] for k in rng.integers(0, 30, rng.integers(0, 5))]
        rows.append(
            {
                "user_id": f"u{rng.integers(50)}",
                "item_id": item,
                "category": category[item],
                "price": float(rng.uniform(1, 100)),
                "title": f"{category[item]} thing {item}",
                "query": f"{category[item]} thing" if rng.random() < 0.5 else "",
                "hist_item_ids": "|".join(past),
                "hist_categories": "|".join(category[p] for p in past),
                "click": int(rng.random() < 0.3),
            }
        )
    return pd.DataFrame(rows)


def prepared(tmp_path, name, rows, features) -> Schema:
    path = tmp_path / f"{name}.csv"
    rows.to_csv(path, index=False)
    click = RENAMED["click"] if name == "renamed" else "click"
    config = from_dict(
        TabularConfig,
        {
            "train": str(path),
            "features": features,
            "tasks": [
                {"name": "ctr", "label": click},
                {"name": "retrieval", "type": "retrieval", "label": click},
            ],
        },
    )
    return prepare_tabular(config, tmp_path / name)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("roles")
    rows = shop_rows()
    canonical = prepared(tmp_path, "canonical", rows, [{"name": n, "kind": k} for n, k in KINDS.items()])
    renamed = prepared(
        tmp_path,
        "renamed",
        rows.rename(columns=RENAMED),
        [{"name": RENAMED[n], "kind": k, "roles": ROLES[n]} for n, k in KINDS.items()],
    )
    config = ModelConfig.of(embedding_dim=8, expert_units=[16], tower_units=[8], text_buckets=1000)
    return build_model(canonical, config), build_model(renamed, config)


def layers(model, names: dict[str, str]) -> list[tuple[str, str, int]]:
    """(layer name with column names put back, class, parameters), sorted."""
    out = []
    for layer in model.layers:
        name = layer.name
        for canonical, renamed in names.items():
            if name == renamed or name.startswith(f"{renamed}_"):
                name = canonical + name[len(renamed) :]
        out.append((name, type(layer).__name__, layer.count_params()))
    return sorted(out)


def test_canonical_column_names_get_their_roles(models):
    canonical, _ = models
    names = {layer.name for layer in canonical.layers}
    assert set(STRUCTURE) <= names


def test_renamed_columns_with_declared_roles_get_the_same_model(models):
    canonical, renamed = models
    assert layers(renamed, RENAMED) == layers(canonical, {})
    assert renamed.count_params() == canonical.count_params()
    assert set(renamed.input_names) == set(RENAMED.values()) - {"clicked"}


def test_without_roles_the_renamed_table_loses_history_and_matches(tmp_path):
    rows = shop_rows(n=100).rename(columns=RENAMED)
    features = [{"name": RENAMED[n], "kind": k} for n, k in KINDS.items()]
    path = tmp_path / "plain.csv"
    rows.to_csv(path, index=False)
    config = from_dict(
        TabularConfig,
        {"train": str(path), "features": features, "tasks": [{"name": "ctr", "label": "clicked"}]},
    )
    model = build_model(prepare_tabular(config, tmp_path / "plain"), ModelConfig(embedding_dim=8))
    assert not set(STRUCTURE) & {layer.name for layer in model.layers}
