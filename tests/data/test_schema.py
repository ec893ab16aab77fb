import pytest

from tfshop.data.schema import Feature, Label, Schema, Task
from tfshop.errors import ConfigError, DataError


def make_schema() -> Schema:
    schema = Schema(
        features=[
            Feature("user_id", "id", hash_buckets=1000),
            Feature("item_id", "id", vocab="vocab/item_id.txt", vocab_size=3),
            Feature("price", "numeric", dtype="float32", default=0.0),
            Feature("hist_item_ids", "sequence", vocab="vocab/item_id.txt", max_len=5),
        ],
        labels=[Label("click"), Label("purchase"), Label("query_intent", "string", "")],
        tasks=[
            Task("ctr", "binary", "click"),
            Task("cvr", "binary", "purchase", parent="ctr", weight=2.0),
            Task("intent", "multiclass", "query_intent", num_classes=4, vocab="vocab/query_intent.txt"),
        ],
    )
    for task in schema.tasks:
        task.validate()
    schema.validate()
    return schema


def test_round_trip(tmp_path):
    schema = make_schema()
    schema.save(tmp_path / "schema.json")
    loaded = Schema.load(tmp_path)
    assert loaded == schema
    assert loaded.tasks[0].weight is None and loaded.tasks[1].weight == 2.0
    assert loaded.feature("price").dtype == "float32"
    assert [f.name for f in loaded.features_of_kind("id")] == ["user_id", "item_id"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["tasks"][0].update(label="cart"), "tasks.ctr.label: 'cart' is not a label column"),
        (lambda d: d["tasks"][1].update(parent="nope"), "tasks.cvr.parent: no task named 'nope'"),
        (lambda d: d["features"].append(dict(d["features"][0])), "duplicate column name 'user_id'"),
        (lambda d: d["features"][3].update(max_len=0), "sequence features need max_len > 0"),
        (lambda d: d["features"][2].update(dtype="string"), "numeric features need dtype"),
        (lambda d: d["features"][0].update(kind="vector"), "'vector' is not one of"),
        (lambda d: d["tasks"][0].update(type="ranking"), "ctr.type: 'ranking' is not one of binary"),
        (lambda d: d["tasks"][0].update(weight=-1), "must be >= 0"),
        (lambda d: d["tasks"][2].update(num_classes=1), "needs at least 2"),
        (lambda d: d["tasks"][2].update(vocab=None), "needs its class vocabulary file"),
        (lambda d: d["tasks"][0].update(label="price"), "a feature column is a label only for a text task"),
        (lambda d: d["tasks"][0].update(label="price", inputs=["price"]), "'price' is not a text feature"),
        (lambda d: d["tasks"][0].update(name="price"), "tasks.price: a task may not share its name"),
    ],
)
def test_invalid_schema_is_rejected(change, message):
    import json

    data = json.loads(make_schema().to_json())
    change(data)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Schema.from_json(json.dumps(data))


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(DataError, match="schema not found"):
        Schema.load(tmp_path)
    (tmp_path / "schema.json").write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        Schema.load(tmp_path)
    with pytest.raises(DataError, match="no feature named 'nope'"):
        make_schema().feature("nope")


def test_version_1_schema_with_loss_and_metrics_still_loads():
    import json

    data = json.loads(make_schema().to_json())
    data["version"] = 1
    for task in data["tasks"]:
        task.update(loss="binary_crossentropy", metrics=["auc"])
    assert Schema.from_json(json.dumps(data)).tasks == make_schema().tasks
