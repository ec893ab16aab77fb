"""Export: versions, warm-up, a fresh process's scores, the retrieve signature, interrupted writes."""

import shutil

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis.prediction_log_pb2 import PredictionLog

from tfshop.data.catalogue import catalogue_inputs, read_catalogue
from tfshop.data.schema import Schema
from tfshop.export.saved_model import RetrievalIndex, export
from tfshop.export.verify import score_in_fresh_process
from tfshop.models.config import ModelConfig
from tfshop.models.saved import load_keras
from tfshop.models.towers import tower_inputs, tower_models
from tfshop.pipeline.checks import sample_inputs


@pytest.fixture(scope="module")
def version_1(small_dataset, trained_mmoe, tmp_path_factory):
    """The shared trained model exported once, as version 1 of ``saved_models/shop``."""
    base = tmp_path_factory.mktemp("export") / "saved_models"
    return export(trained_mmoe[0], Schema.load(small_dataset), base, "shop")


def copy_of(version, base):
    """``version`` copied as ``base/shop/1``: a model folder of one's own to add versions to."""
    shutil.copytree(version, base / "shop" / "1")
    return base / "shop" / "1"


def test_export_serves_in_a_fresh_process(small_dataset, tmp_path, trained_mmoe, version_1):
    model, run = trained_mmoe
    schema = Schema.load(small_dataset)
    inputs = sample_inputs(small_dataset, model.input_names, "test", 16)
    first = copy_of(version_1, tmp_path / "saved_models")
    # As the pipeline does: export a model reloaded from disk; the export must not need that copy.
    shutil.copytree(run / "model", tmp_path / "copy")
    reloaded = load_keras(tmp_path / "copy")
    second = export(reloaded, schema, tmp_path / "saved_models", "shop", warmup=inputs)
    shutil.rmtree(tmp_path / "copy")
    assert (first.name, second.name) == ("1", "2")
    assert 'name: "shop"' in (tmp_path / "saved_models" / "models.config").read_text()
    assert Schema.load(second / "assets.extra" / "schema.json") == schema
    logs = list(tf.data.TFRecordDataset(str(second / "assets.extra" / "tf_serving_warmup_requests")))
    assert len(logs) == 2  # 16 rows in requests of 8
    request = prediction_log_pb2.PredictionLog.FromString(logs[0].numpy()).predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    assert set(request.inputs) == set(model.input_names)
    expected = {k: v.numpy() for k, v in model(inputs).items()}
    served = score_in_fresh_process(second, inputs)
    assert set(served) == set(expected)
    for name in expected:
        np.testing.assert_allclose(served[name], expected[name], atol=1e-5)
    # Scalars also accepted as (batch, 1), and serialized Examples through predict_examples.
    column = {k: (v[:, None] if v.ndim == 1 else v) for k, v in inputs.items()}
    again = score_in_fresh_process(second, column)
    np.testing.assert_allclose(again["ctr"], expected["ctr"], atol=1e-5)
    # Ids never seen in training fall into the OOV bucket; NaN prices into their own bucket.
    unseen = dict(
        inputs,
        item_id=np.array([b"no-such-item"] * 16),
        user_id=np.array([b"new-user"] * 16),
        hist_item_ids=np.full_like(inputs["hist_item_ids"], b"gone"),
        price=np.full(16, np.nan, np.float32),
    )
    fallback = score_in_fresh_process(second, unseen)
    assert all(np.isfinite(v).all() for v in fallback.values())
    assert ((fallback["ctr"] > 0) & (fallback["ctr"] < 1)).all()


def test_export_keeps_user_ids_out(small_shop, version_1):
    path = version_1

    users = pd.read_parquet(small_shop / "users.parquet")["user_id"]
    long_ids = {u.encode() for u in users if len(u) >= 4}  # u123 and longer: no accidental byte matches
    blob = b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())

    def stored(token: bytes) -> bool:  # a line of a file, a C string, or a protobuf string value
        return any(form in blob for form in (token + b"\n", token + b"\x00", bytes([len(token)]) + token))

    found = [u for u in long_ids if stored(u)]
    assert not found, f"user ids in clear in the export: {found[:5]}"
    assert stored(b"i1") and stored(b"i10")  # the item vocabulary is found the same way


def test_retrieve_signature_returns_the_towers_top_k(small_dataset, tmp_path, trained_mmoe):
    """``retrieve`` in a fresh process: the catalogue's top k by the towers' dot product, for
    users with and without history; k above the candidates is cut to them; candidates restrict."""
    model, _ = trained_mmoe
    schema, catalogue = Schema.load(small_dataset), read_catalogue(small_dataset)
    query_names, item_names = tower_inputs(model.input_names, small_dataset, ModelConfig())
    assert "hist_item_ids" in query_names and "position" not in query_names
    assert {"item_id", "title", "price"} <= set(item_names) and "user_id" not in item_names
    index = RetrievalIndex(model, schema, catalogue, query_names, item_names, k=5)
    inputs = sample_inputs(small_dataset, model.input_names, "test", 4)
    path = export(model, schema, tmp_path / "saved_models", "shop", index=index, warmup=inputs)
    warmed = [
        PredictionLog.FromString(r.numpy()).predict_log.request.model_spec.signature_name
        for r in tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests"))
    ]
    assert warmed == ["serving_default", "retrieve"]  # no signature's first request pays its loading
    requests = {n: inputs[n] for n in query_names}
    requests["hist_item_ids"][0] = b""  # a user with no history yet
    served = score_in_fresh_process(path, requests, signature="retrieve")
    query_tower, item_tower = tower_models(model, query_names, item_names)
    rows = catalogue_inputs(catalogue, schema, item_names)
    scores = (
        query_tower(requests).numpy() @ item_tower({n: tf.constant(v) for n, v in rows.items()}).numpy().T
    )
    top = np.argsort(-scores, axis=1)[:, :5]
    assert served["item_ids"].shape == (4, 5)
    np.testing.assert_array_equal(served["item_ids"].astype(str), catalogue["item_id"].to_numpy()[top])
    np.testing.assert_allclose(served["scores"], np.take_along_axis(scores, top, axis=1), atol=1e-5)
    few = RetrievalIndex(
        model, schema, catalogue, query_names, item_names, k=50, candidates=["i1", "i2", "i3"]
    )
    assert few.k == 3
    path = export(model, schema, tmp_path / "saved_models", "shop", index=few)
    served = score_in_fresh_process(path, requests, signature="retrieve")
    assert set(served["item_ids"].astype(str).ravel()) <= {"i1", "i2", "i3"}
    with pytest.raises(ValueError, match="1 ids not in the catalogue"):
        RetrievalIndex(model, schema, catalogue, query_names, item_names, candidates=["i1", "nope"])
    with pytest.raises(ValueError, match="must be positive"):
        RetrievalIndex(model, schema, catalogue, query_names, item_names, k=0)


def test_an_interrupted_export_leaves_the_previous_version_servable(
    small_dataset, tmp_path, trained_mmoe, version_1, monkeypatch
):
    import tfshop.export.saved_model as saved_model

    model, _ = trained_mmoe
    schema = Schema.load(small_dataset)
    inputs = sample_inputs(small_dataset, model.input_names, "test", 4)
    first = copy_of(version_1, tmp_path / "saved_models")

    def killed(*args, **kwargs):  # the SavedModel is written; the process dies before the version appears
        raise KeyboardInterrupt

    monkeypatch.setattr(saved_model, "write_warmup_requests", killed)
    with pytest.raises(KeyboardInterrupt):
        export(model, schema, tmp_path / "saved_models", "shop", warmup=inputs)
    assert sorted(p.name for p in (tmp_path / "saved_models" / "shop").iterdir()) == ["1"]
    # A write killed outright leaves only a hidden .tmp-* folder, which is no version to a server.
    (tmp_path / "saved_models" / "shop" / ".tmp-2-dead").mkdir()
    assert saved_model.next_version(tmp_path / "saved_models" / "shop") == 2
    served = score_in_fresh_process(first, inputs)
    np.testing.assert_allclose(served["ctr"], model(inputs)["ctr"].numpy(), atol=1e-5)
