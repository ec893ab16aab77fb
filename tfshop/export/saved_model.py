"""The ``export`` stage: a trained model as a versioned SavedModel that TF Serving loads.

Layout: ``<base>/<name>/<version>/`` (integer versions, the next one each export, written to a
temporary directory and renamed) and ``<base>/models.config`` for ``--model_config_file``.
Each version holds the schema in ``assets.extra/schema.json`` and, given sample rows, TF
Serving's warm-up file ``assets.extra/tf_serving_warmup_requests`` (``PredictionLog`` records).

Signatures, both returning a dict of named task outputs and taking no labels:

* ``serving_default``: one named input per schema feature, raw values (strings, floats);
  scalar features accept shape ``(batch,)`` or ``(batch, 1)``, sequences ``(batch, n)`` for any
  ``n`` (cut or padded to the schema's ``max_len``);
* ``predict_examples``: ``examples``, a batch of serialized ``tf.train.Example`` protos with the
  same features, as prepare writes them;
* ``retrieve`` (models with a retrieval task): the query tower's features → ``item_ids`` and
  ``scores``, ``(batch, k)``, the top k items of the catalogue (or of a candidate set) by the
  dot product of the query vector with item vectors computed at export (brute force, plain ops).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope

from tfshop.data.pipeline import TF_DTYPES, parsing_spec
from tfshop.data.schema import Schema
from tfshop.data.tables import replace_dir
from tfshop.export.contract import check_contract
from tfshop.models.towers import query_tower_and_item_vectors

log = logging.getLogger(__name__)


class ServingModule(tf.Module):
    """Wraps the Keras model with input reshaping for the serving signatures."""

    def __init__(self, model: keras.Model, schema: Schema, index: RetrievalIndex | None = None):
        super().__init__()
        self.model, self.index = model, index
        self.features = [f for f in schema.features if f.name in model.input_names]
        names = {f.name for f in self.features}
        self.spec = {k: v for k, v in parsing_spec(schema).items() if k in names}
        # one trace of the model, which predict_examples also calls after parsing
        self.serve = tf.function(self._serve, input_signature=[{f.name: _spec(f) for f in self.features}])

    def _inputs(self, raw: dict, features: list | None = None) -> dict:
        out = {}
        for f in features or self.features:
            x = tf.convert_to_tensor(raw[f.name])
            if f.kind == "sequence":
                x = tf.reshape(x, [tf.shape(x)[0], -1])[:, : f.max_len]
                x = tf.pad(x, [[0, 0], [0, f.max_len - tf.shape(x)[1]]], constant_values="")
            else:
                x = tf.reshape(x, [-1])
            out[f.name] = tf.cast(x, TF_DTYPES[f.dtype]) if f.dtype != "string" else x
        return out

    def _serve(self, features: dict) -> dict:
        return self.model(self._inputs(features), training=False)

    def serve_examples(self, examples: tf.Tensor) -> dict:
        parsed = tf.io.parse_example(examples, self.spec)
        dense = {
            k: tf.sparse.to_dense(v, default_value="") if isinstance(v, tf.SparseTensor) else v
            for k, v in parsed.items()
        }
        return self.serve(dense)

    def retrieve(self, features: dict) -> dict:
        index = self.index
        queries = index.query_tower(self._inputs(features, index.query_features), training=False)
        top = tf.math.top_k(tf.matmul(queries, index.item_vectors, transpose_b=True), k=index.k)
        return {"item_ids": tf.gather(index.item_ids, top.indices), "scores": top.values}

    def signatures(self) -> dict:
        signatures = {
            "serving_default": self.serve.get_concrete_function(),
            "predict_examples": tf.function(self.serve_examples).get_concrete_function(
                tf.TensorSpec([None], tf.string, name="examples")
            ),
        }
        if self.index is not None:
            query_specs = {f.name: _spec(f) for f in self.index.query_features}
            signatures["retrieve"] = tf.function(self.retrieve).get_concrete_function(query_specs)
        return signatures


def _spec(feature) -> tf.TensorSpec:
    shape = [None, None] if feature.kind == "sequence" else None
    return tf.TensorSpec(shape, TF_DTYPES[feature.dtype], name=feature.name)


class RetrievalIndex(tf.Module):
    """The catalogue's item vectors, computed once at export, and the query tower that scores them.

    ``k`` results per request, at most the number of candidates; ``candidates``: item ids to
    restrict the index to (default: the whole catalogue).
    """

    def __init__(self, model, schema: Schema, catalogue, query_names, item_names, k=100, candidates=None):
        super().__init__()
        item_id = schema.name_of("item_id")
        if candidates is not None:
            unknown = sorted(set(candidates) - set(catalogue[item_id]))
            if unknown:
                raise ValueError(
                    f"retrieval candidates: {len(unknown)} ids not in the catalogue, e.g. {unknown[0]!r}"
                )
            catalogue = catalogue[catalogue[item_id].isin(set(candidates))]
        if k <= 0:
            raise ValueError(f"retrieval k: {k} must be positive")
        if k > len(catalogue):
            log.warning(
                "retrieval k: %d is more than the %d candidates; returning %d",
                k,
                len(catalogue),
                len(catalogue),
            )
        self.k = min(k, len(catalogue))
        self.query_tower, vectors = query_tower_and_item_vectors(
            model, schema, catalogue, query_names, item_names
        )
        by_name = {f.name: f for f in schema.features}
        self.query_features = [by_name[n] for n in query_names]
        # variables, not constants: a large catalogue's vectors belong in the checkpoint, not the graph
        self.item_vectors = tf.Variable(vectors, trainable=False, name="item_vectors")
        ids = catalogue[item_id].astype(str).tolist()
        self.item_ids = tf.Variable(ids, trainable=False, name="item_ids")


def next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export(
    model: keras.Model,
    schema: Schema,
    base: str | Path = "saved_models",
    name: str = "tfshop",
    version: int | None = None,
    warmup: dict[str, np.ndarray] | None = None,
    index: RetrievalIndex | None = None,
) -> Path:
    """Writes ``<base>/<name>/<version>/`` and ``<base>/models.config``; returns the version dir.

    The version appears only once it meets TF Serving's contract (``tfshop.export.contract``).

    ``warmup``: raw input rows (as the serving signature takes them) for the warm-up requests;
    ``index``: adds the ``retrieve`` signature.
    """
    module = ServingModule(model, schema, index)
    return save_version(
        module, module.signatures(), base, name, version, warmup, {"schema.json": schema.to_json()}
    )


def save_version(
    module: tf.Module,
    signatures: dict,
    base: str | Path,
    name: str,
    version: int | None = None,
    warmup: dict[str, np.ndarray] | None = None,
    assets: dict[str, str] | None = None,
) -> Path:
    """Saves ``module`` with ``signatures`` as the next (or the given) version of model ``name``:
    ``assets`` (file name → text) and the warm-up requests of ``warmup``'s rows in
    ``assets.extra/``, checked against TF Serving's contract, then renamed into place."""
    model_dir = Path(base) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = version or next_version(model_dir)
    target = model_dir / str(version)
    tmp = model_dir / f".tmp-{version}-{uuid.uuid4().hex[:8]}"
    try:
        # the signatures are the export's whole interface: Keras' per-layer traces would only
        # double the time the save takes
        with keras_option_scope(save_traces=False):
            tf.saved_model.save(module, str(tmp), signatures=signatures)
        (tmp / "assets.extra").mkdir()
        for file, text in (assets or {}).items():
            (tmp / "assets.extra" / file).write_text(text, encoding="utf-8")
        if warmup is not None:
            inputs = {
                key: [t.name for t in tf.nest.flatten(f.structured_input_signature)]
                for key, f in signatures.items()
            }
            write_warmup_requests(tmp / "assets.extra" / "tf_serving_warmup_requests", name, warmup, inputs)
        check_contract(tmp)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_models_config(Path(base))
    return target


def write_warmup_requests(
    path: Path,
    model_name: str,
    rows: dict[str, np.ndarray],
    signatures: dict[str, list[str]],
    batch: int = 8,
) -> int:
    """TF Serving warm-up: ``PredictionLog`` records of requests over ``rows``, for each signature
    (``signatures``: name → input names) whose inputs the rows hold, so that no signature's first
    request pays for its loading."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    total = len(next(iter(rows.values())))
    count = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, names in signatures.items():
            if not set(names) <= set(rows):
                continue
            for start in range(0, total, batch):
                spec = model_pb2.ModelSpec(name=model_name, signature_name=signature)
                request = predict_pb2.PredictRequest(model_spec=spec)
                for key in names:
                    request.inputs[key].CopyFrom(tf.make_tensor_proto(rows[key][start : start + batch]))
                predict = prediction_log_pb2.PredictLog(request=request)
                writer.write(prediction_log_pb2.PredictionLog(predict_log=predict).SerializeToString())
                count += 1
    return count


def write_models_config(base: Path) -> Path:
    """TF Serving's model config listing every model under ``base`` (paths as /models/<name>, where
    Docker mounts ``base``; ``tfshop serve`` reads them beside the config file)."""
    models = [
        d.name for d in sorted(base.iterdir()) if d.is_dir() and any(p.name.isdigit() for p in d.iterdir())
    ]
    entry = (
        '  config {{\n    name: "{0}"\n    base_path: "/models/{0}"\n    model_platform: "tensorflow"\n  }}\n'
    )
    entries = "".join(entry.format(m) for m in models)
    path = base / "models.config"
    path.write_text(f"model_config_list {{\n{entries}}}\n")
    return path
