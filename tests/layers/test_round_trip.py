"""Every registered tfshop layer survives get_config → from_config and a SavedModel save → load
(without traces, as training saves models) with the same outputs."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import tfshop.models.multitask  # noqa: F401  (registers every layer)
from tfshop.layers.attention import TargetAttention
from tfshop.layers.bert import BertConfig, BertEmbeddings, BertEncoder, TransformerBlock
from tfshop.layers.experts import MLP, MultiGateMixtureOfExperts, ProgressiveLayeredExtraction, SharedBottom
from tfshop.layers.features import Carry, MaskedMean, NotPadding, NumericEmbedding, StopGradient
from tfshop.layers.retrieval import CatalogueSample, InBatchScores
from tfshop.layers.sequence import CausalSequenceEncoder, HistoryState
from tfshop.layers.text import CachedSentenceEncoder, HashedBagOfWords, SentenceEncoder
from tfshop.layers.wordpiece import WordPieceTokenizer

RNG = np.random.default_rng(0)
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "red", "shoe", "##s"]
BERT = BertConfig(
    vocab_size=len(VOCAB),
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=16,
).__dict__
TOKENIZER = WordPieceTokenizer(VOCAB, max_length=8).get_config()
ENCODER = BertEncoder(BERT).get_config()


def floats(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def ids(*shape):
    return RNG.integers(0, 5, shape).astype(np.int64)


TEXTS = np.array([b"red shoes", b"shoe", b""], dtype=object)
TOKENS = {"input_ids": ids(3, 6) % len(VOCAB), "attention_mask": np.ones((3, 6), np.int64)}
TOKENS["token_type_ids"] = np.zeros((3, 6), np.int64)

# layer → (a factory, example inputs, how the layer is called on them)
CASES = {
    MLP: (lambda: MLP([8, 4]), [floats(3, 5)], lambda layer, x: layer(x[0])),
    SharedBottom: (lambda: SharedBottom(2, [4]), [floats(3, 5)], lambda layer, x: layer(x[0])),
    MultiGateMixtureOfExperts: (
        lambda: MultiGateMixtureOfExperts(2, 3, [4]),
        [floats(3, 5)],
        lambda layer, x: layer(x[0]),
    ),
    ProgressiveLayeredExtraction: (
        lambda: ProgressiveLayeredExtraction(2, 2, 1, 1, [4]),
        [floats(3, 5)],
        lambda layer, x: layer(x[0]),
    ),
    TargetAttention: (
        lambda: TargetAttention(4),
        [floats(3, 4), floats(3, 5, 4), ids(3, 5) > 1],
        lambda layer, x: layer(list(x)),
    ),
    NumericEmbedding: (
        lambda: NumericEmbedding(1.0, 2.0, [0.0, 1.0], 3, low=0.0, high=2.0),
        [np.array([0.5, np.nan, 3.0], np.float32)],
        lambda layer, x: layer(x[0]),
    ),
    MaskedMean: (lambda: MaskedMean(), [floats(3, 5, 4), ids(3, 5)], lambda layer, x: layer(list(x))),
    NotPadding: (lambda: NotPadding(), [ids(3, 5)], lambda layer, x: layer(x[0])),
    StopGradient: (lambda: StopGradient(), [floats(3, 4)], lambda layer, x: layer(x[0])),
    Carry: (lambda: Carry(), [floats(3, 4), floats(3, 2)], lambda layer, x: layer(x)),
    HashedBagOfWords: (lambda: HashedBagOfWords(100, 4), [TEXTS], lambda layer, x: layer(x[0])),
    WordPieceTokenizer: (
        lambda: WordPieceTokenizer(VOCAB, max_length=8),
        [TEXTS],
        lambda layer, x: layer(x[0]),
    ),
    BertEmbeddings: (
        lambda: BertEmbeddings(len(VOCAB), 8, 16, 2, 1e-12, 0.1),
        [TOKENS["input_ids"], TOKENS["token_type_ids"]],
        lambda layer, x: layer(x[0], x[1]),
    ),
    TransformerBlock: (
        lambda: TransformerBlock(8, 2, 16, 1e-12, 0.1, 0.1),
        [floats(3, 6, 8), TOKENS["attention_mask"]],
        lambda layer, x: layer(x[0], x[1]),
    ),
    BertEncoder: (
        lambda: BertEncoder(BERT),
        list(TOKENS.values()),
        lambda layer, x: layer(dict(zip(TOKENS, x))),
    ),
    SentenceEncoder: (lambda: SentenceEncoder(TOKENIZER, ENCODER), [TEXTS], lambda layer, x: layer(x[0])),
    CachedSentenceEncoder: (
        lambda: CachedSentenceEncoder(TOKENIZER, ENCODER, ["shoe"]),
        [np.array([b"shoe", b"shoe"], dtype=object)],
        lambda layer, x: layer(x[0]),
    ),
    CausalSequenceEncoder: (
        lambda: CausalSequenceEncoder(5, num_heads=2),
        [floats(3, 5, 4), ids(3, 5) > 1],
        lambda layer, x: layer(list(x)),
    ),
    HistoryState: (lambda: HistoryState(5), [floats(3, 5, 4), ids(3, 5)], lambda layer, x: layer(list(x))),
    InBatchScores: (
        lambda: InBatchScores({"a": 3, "b": 1}, 0.5, popularity_correction=False),
        [floats(3, 4), floats(3, 4), np.array([b"a", b"b", b"a"], dtype=object)],
        lambda layer, x: layer(list(x)),
    ),
    CatalogueSample: (
        lambda: CatalogueSample({"item_id": ["a", "b"], "price": [1.0, 1.0]}, 4),
        [floats(3, 1)],
        lambda layer, x: layer(x[0]),
    ),
}


def registered_layers() -> set[type]:
    objects = keras.saving.get_custom_objects()
    return {
        cls
        for key, cls in objects.items()
        if key.startswith("tfshop>") and issubclass(cls, keras.layers.Layer)
    }


def test_every_registered_layer_has_a_case():
    assert registered_layers() == set(CASES)


def _same(a, b) -> None:
    a, b = tf.nest.flatten(a), tf.nest.flatten(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        if x.dtype != object:
            assert np.allclose(x, y, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("cls", sorted(CASES, key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_config_and_saved_model_round_trip(cls, tmp_path):
    factory, inputs, call = CASES[cls]
    layer = factory()
    expected = call(layer, [tf.constant(x) for x in inputs])
    clone = cls.from_config(layer.get_config())
    call(clone, [tf.constant(x) for x in inputs])
    clone.set_weights(layer.get_weights())
    deterministic = cls is not CatalogueSample  # a fresh draw per call
    if deterministic:
        _same(call(clone, [tf.constant(x) for x in inputs]), expected)

    symbolic = [
        keras.Input(x.shape[1:], dtype=tf.as_dtype(x.dtype) if x.dtype != object else tf.string)
        for x in inputs
    ]
    model = keras.Model(symbolic, call(layer, symbolic))
    model.save(str(tmp_path / "model"), save_format="tf", include_optimizer=False, save_traces=False)
    loaded = keras.models.load_model(str(tmp_path / "model"), compile=False)
    loaded.load_weights(str(tmp_path / "model" / "variables" / "variables")).assert_existing_objects_matched()
    assert [type(x) for x in loaded.layers] == [type(x) for x in model.layers]
    if deterministic:
        _same(loaded([tf.constant(x) for x in inputs]), model([tf.constant(x) for x in inputs]))
