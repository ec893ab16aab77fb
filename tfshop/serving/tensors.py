"""Request tensors: JSON and ``TensorProto`` to NumPy and back, checked against a signature.

JSON follows TF Serving's REST API: nested lists, strings as UTF-8 text or ``{"b64": ...}`` for
bytes, the row format (``instances``: one entry per example) and the columnar format
(``inputs``: one entry per input). Every bad value is refused with a message naming the input.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import tensorflow as tf

from tfshop.serving.status import invalid

MAX_DEPTH = 32  # a tensor has at most this many dimensions (TensorFlow allows 254, NumPy 64)
DTYPE_NAMES = {d.as_datatype_enum: d.name for d in tf.dtypes.__dict__.values() if isinstance(d, tf.DType)}


@dataclass(frozen=True)
class SignatureSpec:
    """A signature's named inputs and outputs, read from its ``SignatureDef``."""

    name: str
    inputs: dict[str, tf.TensorSpec]
    outputs: dict[str, tf.TensorSpec]

    @classmethod
    def from_proto(cls, name: str, signature_def) -> SignatureSpec:
        def specs(infos) -> dict[str, tf.TensorSpec]:
            return {
                key: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.dtypes.as_dtype(info.dtype), key)
                for key, info in sorted(infos.items())
            }

        return cls(name, specs(signature_def.inputs), specs(signature_def.outputs))

    def dtype(self, name: str) -> tf.DType:
        if name not in self.inputs:
            raise invalid(f"signature {self.name!r} has no input {name!r} (inputs: {', '.join(self.inputs)})")
        return self.inputs[name].dtype

    def check_declared_shape(self, name: str, dims: list[int], max_rows: int, max_values: int) -> None:
        """Refuses a shape a request declares (a ``TensorProto``'s, which may ask for 2^40 copies of
        one value) that does not fit the input, the row limit or ``max_values`` values, before
        any memory is spent."""
        spec = self.inputs.get(name)
        if spec is None:
            self.dtype(name)  # names the unknown input
        if any(d < 0 for d in dims) or not spec.shape.is_compatible_with(dims):
            raise invalid(f"input {name!r}: shape {dims} does not fit {spec.shape}")
        if dims and dims[0] > max_rows:
            raise invalid(f"input {name!r}: batch of {dims[0]} rows is over the limit of {max_rows}")
        if math.prod(dims) > max_values:
            raise invalid(f"input {name!r}: shape {dims} asks for more values than the request may hold")

    def check(self, arrays: dict[str, np.ndarray], max_rows: int) -> int:
        """Checks names, shapes and batch sizes; returns the number of rows."""
        for name in sorted(arrays):
            self.dtype(name)
        rows = {}
        for name, spec in self.inputs.items():
            if name not in arrays:
                raise invalid(f"missing input {name!r} for signature {self.name!r}")
            array = arrays[name]
            if array.ndim == 0 or not spec.shape.is_compatible_with(array.shape):
                raise invalid(f"input {name!r}: shape {list(array.shape)} does not fit {spec.shape}")
            rows[name] = array.shape[0]
        if len(set(rows.values())) > 1:
            raise invalid(f"inputs disagree on the batch size: {rows}")
        batch = next(iter(rows.values()), 0)
        if batch == 0:
            raise invalid("empty batch: every input has 0 rows")
        if batch > max_rows:
            name = next(iter(rows))
            raise invalid(f"input {name!r}: batch of {batch} rows is over the limit of {max_rows}")
        return batch


def from_json(name: str, value: Any, dtype: tf.DType) -> np.ndarray:
    """A JSON value (nested lists of scalars) as an array of ``dtype``."""
    array = _whole_array(value, dtype)
    if array is None:
        array = _leaf_by_leaf(name, value, dtype)
    if dtype.is_floating and np.isinf(array).any():  # NaN stays: the model reads it as missing
        raise invalid(f"input {name!r}: an infinite value (or a number beyond {dtype.name})")
    return array


def _leaf_by_leaf(name: str, value: Any, dtype: tf.DType) -> np.ndarray:
    shape = _shape(name, value)
    leaves = [_leaf(name, v, dtype) for v in _flatten(value)]
    if dtype == tf.string:
        array = np.empty(len(leaves), dtype=object)
        array[:] = leaves
    else:
        try:
            array = np.array(leaves, dtype=dtype.as_numpy_dtype)
        except OverflowError:
            raise invalid(f"input {name!r}: a value is out of range for {dtype.name}") from None
    return array.reshape(shape)


def _whole_array(value: Any, dtype: tf.DType) -> np.ndarray | None:
    """The common case in a few NumPy calls: rectangular lists of the right kind of scalar
    (text stays NumPy text, which TensorFlow takes as ``tf.string``).

    ``None`` for anything else (ragged lists, other types, ``{"b64": ...}``, out-of-range
    integers): ``from_json`` then walks the value leaf by leaf and names what is wrong.
    """
    try:
        array = np.array(value)
    except (ValueError, OverflowError, RecursionError):
        return None
    if array.ndim > MAX_DEPTH:
        return None
    kind = array.dtype.kind
    if dtype == tf.string:
        return array if kind == "U" else None  # TensorFlow encodes NumPy text as UTF-8 itself
    if dtype == tf.bool:
        return array if kind == "b" else None
    if kind not in ("iuf" if dtype.is_floating else "iu"):
        return None
    if dtype.is_integer and array.size:
        limits = np.iinfo(dtype.as_numpy_dtype)
        if array.min() < limits.min or array.max() > limits.max:
            return None
    with np.errstate(over="ignore"):  # a value beyond the type's range becomes inf, refused after
        return array.astype(dtype.as_numpy_dtype, copy=False)


def from_proto(name: str, proto, dtype: tf.DType) -> np.ndarray:
    """A ``TensorProto`` as an array, refused unless it has exactly ``dtype``."""
    if proto.dtype != dtype.as_datatype_enum:
        got = DTYPE_NAMES.get(proto.dtype, f"dtype {proto.dtype} (unknown)") if proto.dtype else "no dtype"
        raise invalid(f"input {name!r}: {got} given, the signature takes {dtype.name}")
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as err:
        raise invalid(f"input {name!r}: unreadable tensor ({err})") from None


def fill_proto(proto, array: np.ndarray) -> None:
    """Writes ``array`` into a ``TensorProto``: text straight into ``string_val`` (what
    ``tf.make_tensor_proto`` does element by element in Python, several times slower)."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind in "SU":
        proto.dtype = tf.string.as_datatype_enum
        proto.tensor_shape.CopyFrom(tf.TensorShape(array.shape).as_proto())
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist()
        )
    else:
        proto.CopyFrom(tf.make_tensor_proto(array))


def to_json(array: np.ndarray | bytes | float) -> Any:
    """An array as nested lists; bytes as text when they are UTF-8, else ``{"b64": ...}``."""
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(_text_or_b64, otypes=[object])(array).tolist()
    return array.tolist()


def dumps(body: Any) -> bytes:
    """JSON bytes (orjson; NaN and infinities are written as null)."""
    return orjson.dumps(body)


def loads(raw: bytes) -> Any:
    """Parsed JSON; ``NaN`` and ``Infinity``, which strict JSON lacks and TF Serving reads, too."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def rows_from_json(body: dict, spec: SignatureSpec, max_rows: int) -> dict[str, np.ndarray]:
    """The ``instances`` (row) or ``inputs`` (columnar) part of a predict request as arrays; more
    than ``max_rows`` rows are refused before any is converted."""
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise invalid("the request needs exactly one of 'instances' (row format) or 'inputs' (columnar)")
    single = next(iter(spec.inputs)) if len(spec.inputs) == 1 else None
    if has_columns:
        columns = body["inputs"]
        if single and not (isinstance(columns, dict) and single in columns):
            columns = {single: columns}
        elif not isinstance(columns, dict):
            raise invalid("'inputs' must name each input: the signature takes several")
        for name, value in columns.items():
            _check_rows(name, value, max_rows)
    else:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid("'instances' must be a list with one entry per example")
        _check_rows("instances", instances, max_rows)
        if single and not all(isinstance(row, dict) and single in row for row in instances):
            instances = [{single: row} for row in instances]
        if not all(isinstance(row, dict) for row in instances):
            raise invalid("each instance must name each input: the signature takes several")
        names = {key for row in instances for key in row}
        missing = sorted(n for n in names if any(n not in row for row in instances))
        if missing:
            raise invalid(f"input {missing[0]!r} is missing from some instances")
        columns = {n: [row[n] for row in instances] for n in names}
    return {name: from_json(name, value, spec.dtype(name)) for name, value in columns.items()}


def _check_rows(name: str, value: Any, max_rows: int) -> None:
    if isinstance(value, list) and len(value) > max_rows:
        raise invalid(f"input {name!r}: batch of {len(value)} rows is over the limit of {max_rows}")


def _shape(name: str, value: Any, depth: int = 0) -> list[int]:
    if not isinstance(value, list):
        return []
    if depth >= MAX_DEPTH:
        raise invalid(f"input {name!r}: lists nested over {MAX_DEPTH} deep")
    shapes = [_shape(name, v, depth + 1) for v in value]
    if any(s != shapes[0] for s in shapes[1:]):
        raise invalid(f"input {name!r}: ragged lists; every row needs the same length")
    return [len(value), *(shapes[0] if shapes else [])]


def _flatten(value: Any):
    if isinstance(value, list):
        for v in value:
            yield from _flatten(v)
    else:
        yield value


def _leaf(name: str, value: Any, dtype: tf.DType):
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except binascii.Error:
                raise invalid(f"input {name!r}: bad base64") from None
    elif dtype == tf.bool:
        if isinstance(value, bool):
            return value
    elif not isinstance(value, bool) and isinstance(value, (int, float) if dtype.is_floating else int):
        return value
    raise invalid(f"input {name!r}: {json_type(value)} given where the signature takes {dtype.name}")


def json_type(value: Any) -> str:
    return {str: "text", bool: "a boolean", int: "an integer", float: "a number", dict: "an object"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _text_or_b64(value: bytes | str):
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(value).decode()}
