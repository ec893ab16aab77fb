"""The WordPiece tokenizer and BERT sentence encoder against the original PyTorch implementation.

tests/fixtures/minilm_reference.json was written by tests/fixtures/make_minilm_reference.py
with transformers' BertTokenizer and sentence-transformers on all-MiniLM-L6-v2.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfshop.export.verify import score_in_fresh_process
from tfshop.layers.text import (
    SentenceEncoder,
    default_encoder_dir,
    embed_texts,
    load_tokenizer,
    pretrained_sentence_encoder,
    sentence_encoder,
)

REFERENCE = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text())


def unpadded(encoded, row):
    length = int(encoded["attention_mask"][row].numpy().sum())
    return [encoded[k][row, :length].numpy().tolist() for k in ("input_ids", "token_type_ids")]


def test_token_ids_equal_the_original_tokenizer():
    tokenizer = load_tokenizer(default_encoder_dir(), REFERENCE["max_length"])
    texts = REFERENCE["texts"]
    encoded = tokenizer(tf.constant([t["text"] for t in texts]))
    assert encoded["input_ids"].shape == (len(texts), REFERENCE["max_length"])
    for row, case in enumerate(texts):
        assert unpadded(encoded, row)[0] == case["ids"], case["text"]
    pairs = REFERENCE["pairs"]
    encoded = tokenizer((tf.constant([p["query"] for p in pairs]), tf.constant([p["title"] for p in pairs])))
    for row, case in enumerate(pairs):
        assert unpadded(encoded, row) == [case["ids"], case["type_ids"]], case["query"]


def test_sentence_embeddings_equal_the_original_model():
    texts = REFERENCE["texts"]
    vectors = embed_texts([t["text"] for t in texts], batch_size=5)  # several batches, one ragged
    reference = np.array([t["embedding"] for t in texts])
    assert vectors.shape == reference.shape == (len(texts), 384)
    cosine = np.sum(vectors * reference, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999, dict(zip([t["text"][:20] for t in texts], cosine.round(6)))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embed_texts([]).shape == (0, 384)


def test_exported_encoder_takes_raw_text_in_a_fresh_process(tmp_path):
    model = sentence_encoder(max_length=32)
    texts = np.array([t["text"].encode() for t in REFERENCE["texts"][:4]], dtype=object)
    expected = model(tf.constant(texts)).numpy()
    tf.saved_model.save(model, str(tmp_path / "encoder"))
    served = score_in_fresh_process(tmp_path / "encoder", {"text": texts})
    [output] = served.values()
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_bad_input_and_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(TypeError, match="list of strings"):
        embed_texts("one string")
    with pytest.raises(TypeError, match="list of strings"):
        embed_texts(["ok", 3])
    with pytest.raises(ValueError, match="no vocab.txt"):
        sentence_encoder(tmp_path)
    shutil.copy(default_encoder_dir() / "vocab.txt", tmp_path)
    with pytest.raises(ValueError, match="no config.json"):
        sentence_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10}))
    with pytest.raises(ValueError, match="only BERT"):
        sentence_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"vocab_size": 30522, "num_hidden_layers": 1}))
    with pytest.raises(ValueError, match="no model.safetensors"):
        sentence_encoder(tmp_path)


def test_cached_encoder_looks_up_known_texts_and_encodes_each_new_one_once(tiny_bert):
    layer = pretrained_sentence_encoder(tiny_bert, 16, cached_texts=["red shoe", "blue hat"])
    texts = ["red shoe", "green scarf", "blue hat", "green scarf", "wool socks"]
    got = layer(tf.constant(texts)).numpy()
    direct = SentenceEncoder.call(layer, tf.constant(texts)).numpy()
    np.testing.assert_allclose(got, direct, atol=1e-5)  # cached rows equal the encoder's own output
    np.testing.assert_array_equal(got[1], got[3])
    assert not np.allclose(got[1], got[4])
