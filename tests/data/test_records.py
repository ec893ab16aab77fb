"""Rows written as Examples read back as the same values, in the same order, byte for byte
the same on every write."""

import numpy as np
import pandas as pd
import tensorflow as tf

from tfshop.data.pipeline import parsing_spec
from tfshop.data.records import write_records
from tfshop.data.schema import Feature, Label, Schema


def test_rows_read_back_as_written_with_defaults_for_missing_values(tmp_path):
    schema = Schema(
        features=[
            Feature("user_id", "id", hash_buckets=100),
            Feature("item_id", "id", hash_buckets=100),
            Feature("price", "numeric", dtype="float32", default=0.0),
            Feature("position", "numeric", dtype="int64", default=0),
            Feature("hist_item_ids", "sequence", hash_buckets=100, max_len=3),
            Feature("hist_codes", "sequence", hash_buckets=100, max_len=3),
        ],
        labels=[Label("click"), Label("query_intent", "string", "")],
    )
    rows = pd.DataFrame(
        {
            "user_id": pd.array(["u1", None, "ü3", ""], dtype="string[pyarrow]"),
            "item_id": [17, 18, 19, 20],  # ids given as numbers are written as their text
            "price": [1.5, np.nan, 1e-3, 3.25],
            "position": [1, 2, 3, 4],
            "hist_item_ids": [["a", "b"], [], ["c"], ["d", "e", "f"]],
            "hist_codes": [[1, 2], [], [3], []],
            "click": [1, 0, 1, 0],
            "query_intent": ["buy", None, "browse", "buy"],  # an object column with a gap
        }
    )
    path = tmp_path / "rows.tfrecord.gz"
    assert write_records(path, rows, schema) == 4
    serialized = next(iter(tf.data.TFRecordDataset(str(path), compression_type="GZIP").batch(10)))
    parsed = tf.io.parse_example(serialized, parsing_spec(schema))
    assert parsed["user_id"].numpy().tolist() == [b"u1", b"", "ü3".encode(), b""]
    assert parsed["item_id"].numpy().tolist() == [b"17", b"18", b"19", b"20"]
    np.testing.assert_array_equal(parsed["price"].numpy(), np.float32([1.5, 0.0, 1e-3, 3.25]))
    assert parsed["position"].numpy().tolist() == [1, 2, 3, 4]
    histories = tf.RaggedTensor.from_sparse(parsed["hist_item_ids"]).to_list()
    assert histories == [[b"a", b"b"], [], [b"c"], [b"d", b"e", b"f"]]
    assert tf.RaggedTensor.from_sparse(parsed["hist_codes"]).to_list() == [[b"1", b"2"], [], [b"3"], []]
    assert parsed["click"].numpy().tolist() == [1, 0, 1, 0]
    assert parsed["query_intent"].numpy().tolist() == [b"buy", b"", b"browse", b"buy"]
    again = tmp_path / "again.tfrecord.gz"
    write_records(again, rows, schema)
    assert again.read_bytes() == path.read_bytes()  # features in schema order, not a hash's
